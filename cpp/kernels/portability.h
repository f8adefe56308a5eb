// Small macros and types shared by the CPU kernels (.cc) and the CUDA kernels
// (gpu_kernels.cu, compiled by NVRTC at build time).
#pragma once

// NVRTC has no C++ standard library: it gets the fixed-width integer types here,
// with the host's sizes and alignments (the launch parameters are host structs).
#if defined(__CUDACC_RTC__)
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long long uintptr_t;
#else
#include <cstdint>
#endif

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FKD_HOST_DEVICE __host__ __device__
#else
#define FKD_HOST_DEVICE
#endif

// Loop unrolling in device code only (the device pass defines __CUDA_ARCH__;
// host compilers decide for themselves). FKD_UNROLL_4 unrolls a loop of run-time
// trip count by 4, so four iterations' loads are in flight.
#if defined(__CUDA_ARCH__)
#define FKD_UNROLL _Pragma("unroll")
#define FKD_UNROLL_4 _Pragma("unroll 4")
#else
#define FKD_UNROLL
#define FKD_UNROLL_4
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FKD_RESTRICT __restrict__
#else
#define FKD_RESTRICT
#endif

// Multiversioned CPU loops: the compiler emits an AVX2 clone beside the portable
// one and the loader picks by the running CPU (a wheel cannot assume
// -march=native). The clones compute the same bits: kernels are built with
// -ffp-contract=off and keep a fixed order of every floating-point sum.
#if !defined(__CUDACC__) && defined(__x86_64__) && defined(__linux__) && \
    (defined(__GNUC__) || defined(__clang__)) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define FKD_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef FKD_VECTOR_CLONES
#define FKD_VECTOR_CLONES
#endif

namespace fkd {

// std::is_same for code that NVRTC compiles too.
template <typename A, typename B>
struct IsSame {
  static constexpr bool value = false;
};
template <typename A>
struct IsSame<A, A> {
  static constexpr bool value = true;
};

}  // namespace fkd
