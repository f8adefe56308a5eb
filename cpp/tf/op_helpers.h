// Shared pieces of the TensorFlow face: sharding over TF's CPU pool, image
// geometry from a tensor, and shape-function checks with messages that name
// the argument.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/image_shape.h"
#include "kernels/normalize.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

namespace fkd {
namespace tf_face {

namespace tf = ::tensorflow;

// InvalidArgument status from pieces, as absl::StrCat joins them.
template <typename... Args>
absl::Status InvalidArg(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// Runs fn(begin, end) over [0, total) on the op's CPU thread pool. cost_per_unit
// is a rough cycle count per unit; small totals run inline on the caller.
inline void ParallelFor(tf::OpKernelContext* ctx, int64_t total, int64_t cost_per_unit,
                        const std::function<void(int64_t, int64_t)>& fn) {
  if (total <= 0) return;
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  pool->ParallelFor(total, tf::thread::ThreadPool::SchedulingParams::Adaptive(cost_per_unit), fn);
}

// Runs fn(begin, end) over [0, total) for a memory-bound pass that moves about
// bytes_per_unit bytes per unit. Such a pass gains little from a second core
// (both share the memory bandwidth) and loses much when a shard waits for a
// worker that the OS has descheduled, as happens on a busy 2-core machine: it
// runs on the calling thread unless it moves at least kParallelPassBytes, and
// then in one contiguous block per thread.
inline constexpr int64_t kParallelPassBytes = int64_t{2} << 20;
inline void ParallelForMemoryBound(tf::OpKernelContext* ctx, int64_t total, int64_t bytes_per_unit,
                                   const std::function<void(int64_t, int64_t)>& fn) {
  if (total <= 0) return;
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  const int64_t by_size = total * bytes_per_unit / kParallelPassBytes;
  const int64_t shards = std::min<int64_t>({by_size, pool->NumThreads(), total});
  if (shards <= 1) {
    fn(0, total);
    return;
  }
  const int64_t block = (total + shards - 1) / shards;
  pool->ParallelFor(total, tf::thread::ThreadPool::SchedulingParams::Fixed(block), fn);
}

// Images are [B, H, W] or [B, H, W, C]; any other rank is an error naming `name`.
inline absl::Status ImageShapeOf(const tf::Tensor& images, const char* name, ImageShape* shape) {
  const int dims = images.dims();
  if (dims != 3 && dims != 4) {
    return InvalidArg(name,
                      " must have rank 3 [batch, height, width] or 4 [batch, height, width, "
                      "channels], got shape ",
                      images.shape().DebugString());
  }
  shape->batch = images.dim_size(0);
  shape->height = images.dim_size(1);
  shape->width = images.dim_size(2);
  shape->channels = dims == 4 ? images.dim_size(3) : 1;
  return absl::OkStatus();
}

inline absl::Status RequireScalar(const tf::Tensor& t, const char* name) {
  if (!tf::TensorShapeUtils::IsScalar(t.shape())) {
    return InvalidArg(name, " must be a scalar, got shape ", t.shape().DebugString());
  }
  return absl::OkStatus();
}

// The normalization attributes shared by every op that normalizes images.
#define FKD_NORMALIZE_ATTRS                                  \
  Attr("mode: {'scale', 'standardize', 'affine'} = 'scale'") \
      .Attr("scale: float = 0.003921568859368563")           \
      .Attr("mean: float = 0.0")                             \
      .Attr("stddev: float = 1.0")

inline absl::Status NormalizeParamsFromAttrs(tf::OpKernelConstruction* ctx,
                                             NormalizeParams* params) {
  std::string mode;
  float scale, mean, stddev;
  TF_RETURN_IF_ERROR(ctx->GetAttr("mode", &mode));
  TF_RETURN_IF_ERROR(ctx->GetAttr("scale", &scale));
  TF_RETURN_IF_ERROR(ctx->GetAttr("mean", &mean));
  TF_RETURN_IF_ERROR(ctx->GetAttr("stddev", &stddev));
  const std::string bad = make_normalize_params(mode, scale, mean, stddev, params);
  if (!bad.empty()) return InvalidArg(bad);
  return absl::OkStatus();
}

// Per-image affine maps for a batch, computed on the pool (standardize reads
// every pixel; the other modes are constant).
template <typename In>
void ComputeAffineParams(tf::OpKernelContext* ctx, const In* images, const ImageShape& shape,
                         const NormalizeParams& params, ImageAffine* per_image) {
  const int64_t cost = params.mode == NormalizeMode::kStandardize ? 3 * shape.image_size() : 1;
  ParallelFor(ctx, shape.batch, cost, [&](int64_t b, int64_t e) {
    normalize_affine_params(images, shape, params, b, e, per_image);
  });
}

// Shape functions: an error here surfaces when a graph is built (ValueError
// from tf.function tracing); kernels repeat every check for eager mode.
inline absl::Status ImageRank(tf::shape_inference::InferenceContext* c, int input,
                              const char* name) {
  auto s = c->input(input);
  if (c->RankKnown(s) && c->Rank(s) != 3 && c->Rank(s) != 4) {
    return InvalidArg(name,
                      " must have rank 3 [batch, height, width] or 4 [batch, height, width, "
                      "channels], got shape ",
                      c->DebugString(s));
  }
  return absl::OkStatus();
}

// Merges dimension `dim_a` of input a with `dim_b` of input b (both of known
// rank), failing with a message that names both.
inline absl::Status SameDim(tf::shape_inference::InferenceContext* c, int a, int dim_a,
                            const char* name_a, int b, int dim_b, const char* name_b,
                            const char* what) {
  auto sa = c->input(a);
  auto sb = c->input(b);
  if (!c->RankKnown(sa) || !c->RankKnown(sb) || c->Rank(sa) <= dim_a || c->Rank(sb) <= dim_b) {
    return absl::OkStatus();
  }
  tf::shape_inference::DimensionHandle merged;
  if (!c->Merge(c->Dim(sa, dim_a), c->Dim(sb, dim_b), &merged).ok()) {
    return InvalidArg(what, ": ", name_a, " has shape ", c->DebugString(sa), " but ", name_b,
                      " has shape ", c->DebugString(sb));
  }
  return absl::OkStatus();
}

}  // namespace tf_face
}  // namespace fkd
