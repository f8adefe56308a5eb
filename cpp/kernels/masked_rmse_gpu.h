// Masked RMSE on the GPU: jobs (one launch's raw pointers and sizes), the block
// bodies that masked_rmse.cu runs as CUDA kernels and gpu_emulation.cc runs on
// the CPU, and the launchers. No CUDA or TensorFlow header.
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

#include <cstdint>
#include <string>

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

// Fills a forward job; returns "" or what is wrong.
template <typename T>
std::string make_masked_rmse_job(const T* predictions, const T* targets, int64_t n, bool squared,
                                 T* loss, T* sum_sq, T* count, void* workspace,
                                 int64_t workspace_bytes, MaskedRmseJob<T>* job) {
  if (n < 0) return "the number of elements must be >= 0, got " + std::to_string(n);
  if (n > 0 && (predictions == nullptr || targets == nullptr)) {
    return "predictions and targets must not be null";
  }
  if (loss == nullptr || sum_sq == nullptr || count == nullptr) {
    return "loss, sum_sq and count must not be null";
  }
  const int64_t needed = masked_rmse_gpu_workspace_bytes(n);
  if (workspace_bytes < needed) {
    return "the masked RMSE workspace needs " + std::to_string(needed) + " bytes for " +
           std::to_string(n) + " elements, got " + std::to_string(workspace_bytes);
  }
  if (needed > 0 && (workspace == nullptr ||
                     reinterpret_cast<uintptr_t>(workspace) % alignof(MaskedRmsePartial) != 0)) {
    return "the masked RMSE workspace must be a non-null pointer aligned to " +
           std::to_string(alignof(MaskedRmsePartial)) + " bytes";
  }
  *job = MaskedRmseJob<T>{};
  job->predictions = predictions;
  job->targets = targets;
  job->n = n;
  job->squared = squared;
  job->loss = loss;
  job->sum_sq = sum_sq;
  job->count = count;
  job->partials = static_cast<MaskedRmsePartial*>(workspace);
  job->num_blocks = masked_rmse_gpu_blocks(n);
  return "";
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

template <typename T>
std::string make_masked_rmse_grad_job(const T* predictions, const T* targets, int64_t n,
                                      const T* sum_sq, const T* count, const T* grad_loss,
                                      const T* grad_sum_sq, bool squared, T* grad_predictions,
                                      T* grad_targets, MaskedRmseGradJob<T>* job) {
  if (n < 0) return "the number of elements must be >= 0, got " + std::to_string(n);
  if (n > 0 && (predictions == nullptr || targets == nullptr)) {
    return "predictions and targets must not be null";
  }
  if (sum_sq == nullptr || count == nullptr) return "sum_sq and count must not be null";
  *job = MaskedRmseGradJob<T>{};
  job->predictions = predictions;
  job->targets = targets;
  job->n = n;
  job->sum_sq = sum_sq;
  job->count = count;
  job->grad_loss = grad_loss;
  job->grad_sum_sq = grad_sum_sq;
  job->squared = squared;
  job->grad_predictions = grad_predictions;
  job->grad_targets = grad_targets;
  return "";
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

// Launchers (masked_rmse.cu): enqueue on `stream`, return the launch status.
template <typename T>
GpuStatus launch_masked_rmse(const MaskedRmseJob<T>& job, GpuStream stream);
template <typename T>
GpuStatus launch_masked_rmse_grad(const MaskedRmseGradJob<T>& job, GpuStream stream);

// The same bodies run on the CPU over host pointers (gpu_emulation.cc).
template <typename T>
void emulate_masked_rmse(const MaskedRmseJob<T>& job);
template <typename T>
void emulate_masked_rmse_grad(const MaskedRmseGradJob<T>& job);

}  // namespace gpu
}  // namespace fkd
