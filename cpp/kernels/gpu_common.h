// What the CUDA kernels share with their callers and with the host emulation,
// without any CUDA header: the stream and status types the launchers speak,
// 4-value vector accesses, the per-thread partial sums, and HostBlock, which runs
// a kernel body's "threads" one after another on the CPU.
//
// Every GPU kernel here is written as a body templated on a Block: the CUDA
// kernel runs it with DeviceBlock (gpu_device.cuh: one CUDA block, threads in
// parallel, block sums by warp shuffles) and the emulation with HostBlock, so
// the indexing, launch geometry and math of the GPU path are exercised by the
// CPU test suite. A Block offers:
//   size()    threads in the block
//   each(fn)  runs fn(tid) for each thread (on the GPU: the calling thread)
//   sum(fn)   the sum over the block's threads of fn(tid), in a fixed order,
//             returned to every thread (a block-wide barrier on the GPU)
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/portability.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*; no CUDA header needed to pass one

namespace fkd {

using GpuStream = CUstream_st*;

// A launch's outcome: a cudaError_t value, 0 for success. Launchers check
// cudaGetLastError() after each launch, so a bad configuration or a missing
// driver is reported here rather than at the next synchronization.
struct GpuStatus {
  int code = 0;
  bool ok() const { return code == 0; }
};

// CUDA's name and description of a status (built with the CUDA kernels).
const char* gpu_error_name(GpuStatus status);
const char* gpu_error_string(GpuStatus status);

// Number of CUDA devices; 0 with the reason in *status when there is no driver
// or no device (never crashes).
int gpu_device_count(GpuStatus* status);

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

template <typename T>
inline bool aligned_for_quads(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(Quad<T>) == 0;
}

// Threads per block for work of `units` items per block: about
// kUnitsPerThread each, whole warps, 64 to 1024.
inline constexpr int64_t kUnitsPerThread = 8;

inline int block_threads_for(int64_t units) {
  int64_t t = (units + kUnitsPerThread - 1) / kUnitsPerThread;
  t = (t + 31) / 32 * 32;
  if (t < 64) t = 64;
  if (t > 1024) t = 1024;
  return static_cast<int>(t);
}

// A block's threads run one after another on the CPU: the same body, the same
// geometry, sums in thread order.
struct HostBlock {
  int threads;

  int size() const { return threads; }

  template <typename Fn>
  void each(Fn&& fn) const {
    for (int t = 0; t < threads; ++t) fn(t);
  }

  template <typename Fn>
  auto sum(Fn&& fn) const -> decltype(fn(0)) {
    decltype(fn(0)) total{};
    for (int t = 0; t < threads; ++t) total = total + fn(t);
    return total;
  }
};

}  // namespace gpu
}  // namespace fkd
