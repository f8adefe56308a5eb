// Small macros shared by the CPU (.cc) and CUDA (.cu) kernels.
#pragma once

#if defined(__CUDACC__)
#define FKD_HOST_DEVICE __host__ __device__
#else
#define FKD_HOST_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FKD_RESTRICT __restrict__
#else
#define FKD_RESTRICT
#endif
