// Small macros shared by the CPU (.cc) and CUDA (.cu) kernels.
#pragma once

#if defined(__CUDACC__)
#define FKD_HOST_DEVICE __host__ __device__
// Unrolls the next loop in device code (host compilers decide for themselves).
#define FKD_UNROLL _Pragma("unroll")
// Unrolls a loop of run-time trip count by 4, so 4 iterations' loads are in flight.
#define FKD_UNROLL_4 _Pragma("unroll 4")
#else
#define FKD_HOST_DEVICE
#define FKD_UNROLL
#define FKD_UNROLL_4
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FKD_RESTRICT __restrict__
#else
#define FKD_RESTRICT
#endif
