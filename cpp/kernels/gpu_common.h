// What the CUDA kernels share with their callers and with the host emulation:
// 4-value vector accesses, the per-thread partial sums and the block size rule.
// NVRTC compiles this too (gpu_kernels.cu): no standard header, no host-only type.
//
// Every GPU kernel here is written as a body templated on a Block: the CUDA
// kernel runs it with DeviceBlock (gpu_device.cuh: one CUDA block, threads in
// parallel, block sums by warp shuffles) and the emulation with HostBlock
// (gpu_emulation.cc: the block's threads one after another on the CPU), so the
// indexing, launch geometry and math of the GPU path are exercised by the CPU
// test suite. A Block offers:
//   size()    threads in the block
//   each(fn)  runs fn(tid) for each thread (on the GPU: the calling thread)
//   sum(fn)   the sum over the block's threads of fn(tid), in a fixed order,
//             returned to every thread (a block-wide barrier on the GPU)
#pragma once

#if !defined(__CUDACC_RTC__)
#include <cstring>
#endif

#include "kernels/portability.h"

namespace fkd {
namespace gpu {

// Two sums carried through one block reduction.
template <typename A, typename B>
struct Pair {
  A first;
  B second;
};

template <typename A, typename B>
FKD_HOST_DEVICE inline Pair<A, B> operator+(const Pair<A, B>& x, const Pair<A, B>& y) {
  return {x.first + y.first, x.second + y.second};
}

// Four consecutive values moved as one access (16 bytes for float, 4 for uint8).
template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

template <typename T>
FKD_HOST_DEVICE inline Quad<T> load_quad(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Quad<T>*>(p);
#else
  Quad<T> q;
  std::memcpy(q.v, p, sizeof(q.v));
  return q;
#endif
}

template <typename T>
FKD_HOST_DEVICE inline void store_quad(T* p, const Quad<T>& q) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Quad<T>*>(p) = q;
#else
  std::memcpy(p, q.v, sizeof(q.v));
#endif
}

// Threads per block for work of `units` items per block: about
// kUnitsPerThread each, whole warps, 64 to 1024.
inline constexpr int64_t kUnitsPerThread = 8;

FKD_HOST_DEVICE inline int block_threads_for(int64_t units) {
  int64_t t = (units + kUnitsPerThread - 1) / kUnitsPerThread;
  t = (t + 31) / 32 * 32;
  if (t < 64) t = 64;
  if (t > 1024) t = 1024;
  return static_cast<int>(t);
}

}  // namespace gpu
}  // namespace fkd
