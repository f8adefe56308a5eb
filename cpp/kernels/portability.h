// Small macros shared by the CPU (.cc) and CUDA (.cu) kernels.
#pragma once

#if defined(__CUDACC__)
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
