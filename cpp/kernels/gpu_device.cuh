// The GPU side of the Block interface (gpu_common.h): DeviceBlock runs a kernel
// body in one CUDA block, and block_sum reduces in a fixed order (butterfly
// shuffles within each warp, then warp 0 over the warps' sums), so every run
// gives the same bits. Included by gpu_kernels.cu only (compiled by NVRTC,
// whose built-ins provide threadIdx, __shfl_xor_sync and __syncthreads).
#pragma once

#include "kernels/gpu_common.h"

namespace fkd {
namespace gpu {

__device__ inline double warp_xor(double v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ inline uint64_t warp_xor(uint64_t v, int mask) {
  return static_cast<uint64_t>(
      __shfl_xor_sync(0xffffffffu, static_cast<unsigned long long>(v), mask));
}
__device__ inline int64_t warp_xor(int64_t v, int mask) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), mask));
}
template <typename A, typename B>
__device__ inline Pair<A, B> warp_xor(const Pair<A, B>& v, int mask) {
  return {warp_xor(v.first, mask), warp_xor(v.second, mask)};
}

// Sum of v over the block, returned to every thread. blockDim.x must be a
// multiple of 32 (block_threads_for and the fixed block sizes are), and every
// thread of the block must call it.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  __shared__ T total;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  for (int m = 16; m > 0; m >>= 1) v = v + warp_xor(v, m);
  __syncthreads();  // an earlier block_sum<T> has finished reading warp_sums and total
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? warp_sums[lane] : T{};
    for (int m = 16; m > 0; m >>= 1) w = w + warp_xor(w, m);
    if (lane == 0) total = w;
  }
  __syncthreads();
  return total;
}

// One CUDA block. The members are __host__ __device__ only so the shared
// bodies (also __host__ __device__) may call them; they run on the device.
struct DeviceBlock {
  FKD_HOST_DEVICE int size() const {
#if defined(__CUDA_ARCH__)
    return static_cast<int>(blockDim.x);
#else
    return 0;
#endif
  }

  template <typename Fn>
  FKD_HOST_DEVICE void each(Fn&& fn) const {
#if defined(__CUDA_ARCH__)
    fn(static_cast<int>(threadIdx.x));
#endif
  }

  template <typename Fn>
  FKD_HOST_DEVICE auto sum(Fn&& fn) const -> decltype(fn(0)) {
#if defined(__CUDA_ARCH__)
    return block_sum(fn(static_cast<int>(threadIdx.x)));
#else
    return decltype(fn(0)){};
#endif
  }
};

}  // namespace gpu
}  // namespace fkd
