// Masked RMSE on the GPU: jobs (one launch's raw pointers and sizes) and the
// block bodies that gpu_kernels.cu runs as CUDA kernels and gpu_emulation.cc
// runs on the CPU. NVRTC compiles this header: no standard header here; the
// host side (job makers, launchers) is in gpu_launch.h.
//
// Forward: block b sums the squares and the count of elements
// [b * kMaskedRmseGpuChunk, (b + 1) * kMaskedRmseGpuChunk), each thread over fixed
// positions, then the block in a fixed tree order; a second one-block launch adds
// the block partials in block order. The partition depends on n alone, so the
// result has the same bits run after run (no atomics). A single chunk
// (n <= 4096, B <= 136 Kaggle rows) finishes in the first launch.
// Gradient: one element-wise launch that reads sum_sq, count and the upstream
// gradients from device memory, so nothing waits for the host.
#pragma once

#include "kernels/gpu_common.h"
#include "kernels/masked_rmse.h"
#include "kernels/portability.h"

namespace fkd {
namespace gpu {

inline constexpr int kMaskedRmseThreads = 256;
inline constexpr int kMaskedRmseItems = 16;  // loads in flight per thread and input
inline constexpr int64_t kMaskedRmseGpuChunk = kMaskedRmseThreads * kMaskedRmseItems;
inline constexpr int kMaskedRmseGradItems = 4;

using MaskedRmsePartial = Pair<double, int64_t>;  // (sum of squares, count)

template <typename T>
struct MaskedRmseJob {
  const T* predictions = nullptr;
  const T* targets = nullptr;
  int64_t n = 0;
  bool squared = false;
  T* loss = nullptr;  // device scalars
  T* sum_sq = nullptr;
  T* count = nullptr;
  MaskedRmsePartial* partials = nullptr;  // workspace, num_blocks entries when > 1
  int64_t num_blocks = 1;
};

inline int64_t masked_rmse_gpu_blocks(int64_t n) {
  return n <= kMaskedRmseGpuChunk ? 1 : (n + kMaskedRmseGpuChunk - 1) / kMaskedRmseGpuChunk;
}

// Device workspace the forward needs for n elements (0 for a single chunk).
inline int64_t masked_rmse_gpu_workspace_bytes(int64_t n) {
  const int64_t blocks = masked_rmse_gpu_blocks(n);
  return blocks > 1 ? blocks * static_cast<int64_t>(sizeof(MaskedRmsePartial)) : 0;
}

template <typename T>
FKD_HOST_DEVICE inline void write_masked_rmse_totals(const MaskedRmseJob<T>& job,
                                                     const MaskedRmsePartial& total) {
  const MaskedRmseTotals r =
      masked_rmse_finish(total.first, static_cast<double>(total.second), job.squared);
  *job.loss = static_cast<T>(r.loss);
  *job.sum_sq = static_cast<T>(r.sum_sq);
  *job.count = static_cast<T>(r.count);
}

// Block `block` of the first launch (kMaskedRmseThreads threads).
template <typename T, typename Block>
FKD_HOST_DEVICE inline void run_masked_rmse_partials(const MaskedRmseJob<T>& job, int64_t block,
                                                     const Block& blk) {
  const int64_t begin = block * kMaskedRmseGpuChunk;
  const int64_t end = job.n < begin + kMaskedRmseGpuChunk ? job.n : begin + kMaskedRmseGpuChunk;
  const MaskedRmsePartial total = blk.sum([&](int tid) {
    T p[kMaskedRmseItems] = {};
    T t[kMaskedRmseItems] = {};
    // All loads first, so kMaskedRmseItems of each input are in flight.
    FKD_UNROLL
    for (int u = 0; u < kMaskedRmseItems; ++u) {
      const int64_t i = begin + u * kMaskedRmseThreads + tid;
      if (i < end) {
        p[u] = job.predictions[i];
        t[u] = job.targets[i];
      }
    }
    double sum = 0.0;
    int64_t count = 0;
    FKD_UNROLL
    for (int u = 0; u < kMaskedRmseItems; ++u) {
      if (begin + u * kMaskedRmseThreads + tid < end)
        masked_rmse_accumulate(p[u], t[u], &sum, &count);
    }
    return MaskedRmsePartial{sum, count};
  });
  blk.each([&](int tid) {
    if (tid != 0) return;
    if (job.num_blocks == 1) {
      write_masked_rmse_totals(job, total);
    } else {
      job.partials[block] = total;
    }
  });
}

// The second launch (one block of kMaskedRmseThreads), when num_blocks > 1.
template <typename T, typename Block>
FKD_HOST_DEVICE inline void run_masked_rmse_finish(const MaskedRmseJob<T>& job, const Block& blk) {
  const MaskedRmsePartial total = blk.sum([&](int tid) {
    MaskedRmsePartial s{0.0, 0};
    for (int64_t b = tid; b < job.num_blocks; b += blk.size()) s = s + job.partials[b];
    return s;
  });
  blk.each([&](int tid) {
    if (tid == 0) write_masked_rmse_totals(job, total);
  });
}

template <typename T>
struct MaskedRmseGradJob {
  const T* predictions = nullptr;
  const T* targets = nullptr;
  int64_t n = 0;
  // Device scalars: the forward's outputs and the upstream gradients (null = 0).
  const T* sum_sq = nullptr;
  const T* count = nullptr;
  const T* grad_loss = nullptr;
  const T* grad_sum_sq = nullptr;
  bool squared = false;
  T* grad_predictions = nullptr;  // either may be null (not wanted)
  T* grad_targets = nullptr;
};

inline int64_t masked_rmse_grad_gpu_blocks(int64_t n) {
  const int64_t per_block = static_cast<int64_t>(kMaskedRmseThreads) * kMaskedRmseGradItems;
  return (n + per_block - 1) / per_block;
}

// Block `block` of the gradient launch (kMaskedRmseThreads threads).
template <typename T, typename Block>
FKD_HOST_DEVICE inline void run_masked_rmse_grad_block(const MaskedRmseGradJob<T>& job,
                                                       int64_t block, const Block& blk) {
  blk.each([&](int tid) {
    // Every thread derives the coefficient from the device scalars: four cached
    // loads, cheaper than a broadcast through shared memory and a barrier.
    const T coefficient = static_cast<T>(masked_rmse_grad_coefficient(
        static_cast<double>(*job.sum_sq), static_cast<double>(*job.count),
        job.grad_loss != nullptr ? static_cast<double>(*job.grad_loss) : 0.0,
        job.grad_sum_sq != nullptr ? static_cast<double>(*job.grad_sum_sq) : 0.0, job.squared));
    const int64_t begin = block * kMaskedRmseThreads * kMaskedRmseGradItems;
    T p[kMaskedRmseGradItems] = {};
    T t[kMaskedRmseGradItems] = {};
    FKD_UNROLL
    for (int u = 0; u < kMaskedRmseGradItems; ++u) {
      const int64_t i = begin + u * kMaskedRmseThreads + tid;
      if (i < job.n) {
        p[u] = job.predictions[i];
        t[u] = job.targets[i];
      }
    }
    FKD_UNROLL
    for (int u = 0; u < kMaskedRmseGradItems; ++u) {
      const int64_t i = begin + u * kMaskedRmseThreads + tid;
      if (i >= job.n) continue;
      if (job.grad_predictions != nullptr) {
        job.grad_predictions[i] = masked_rmse_grad_value(p[u], t[u], coefficient);
      }
      if (job.grad_targets != nullptr) {
        job.grad_targets[i] = masked_rmse_grad_value(p[u], t[u], static_cast<T>(-coefficient));
      }
    }
  });
}

}  // namespace gpu
}  // namespace fkd
