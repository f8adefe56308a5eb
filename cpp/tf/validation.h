// Run-time input checks and attribute reading shared by every op kernel (one
// OpKernel<Device, ...> per op), so both devices accept and refuse exactly the
// same inputs with the same messages. Only shapes (and the host-memory seed) are read: nothing here
// touches device memory.
#pragma once

#include <string>
#include <vector>

#include "kernels/flip.h"
#include "kernels/image_shape.h"
#include "kernels/normalize.h"
#include "tf/op_helpers.h"

namespace fkd {
namespace tf_face {

// ------------------------------------------------------------------ masked RMSE

inline absl::Status ValidateMaskedRmsePair(const tf::Tensor& predictions,
                                           const tf::Tensor& targets) {
  if (predictions.dims() < 1) {
    return InvalidArg("predictions must have rank >= 1, got shape ",
                      predictions.shape().DebugString());
  }
  if (predictions.shape() != targets.shape()) {
    return InvalidArg("predictions and targets must have the same shape, got predictions ",
                      predictions.shape().DebugString(), " and targets ",
                      targets.shape().DebugString());
  }
  return absl::OkStatus();
}

// MaskedRmseGrad's inputs 2..5 (sum_sq, count, grad_loss, grad_sum_sq) are scalars.
inline absl::Status ValidateMaskedRmseGradScalars(tf::OpKernelContext* ctx) {
  static const char* const kNames[] = {"sum_sq", "count", "grad_loss", "grad_sum_sq"};
  for (int i = 0; i < 4; ++i) TF_RETURN_IF_ERROR(RequireScalar(ctx->input(2 + i), kNames[i]));
  return absl::OkStatus();
}

// ------------------------------------------------------------------ normalization

inline absl::Status ValidateNormalizeGrad(const tf::Tensor& grad, const tf::Tensor& images,
                                          ImageShape* shape) {
  TF_RETURN_IF_ERROR(ImageShapeOf(images, "images", shape));
  if (grad.shape() != images.shape()) {
    return InvalidArg("grad and images must have the same shape, got ", grad.shape().DebugString(),
                      " and ", images.shape().DebugString());
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ flip

// Input 2 of a flip op is `flip` (bool [B]) or `seed` (int [2]).
enum class Decisions { kGiven, kSeeded };
// What a flip kernel does with the pixels.
enum class Pixels { kFlip, kFlipNormalize, kFlipGrad };

struct FlipAttrs {
  std::vector<int64_t> pairs;
  bool pixel_centers = false;
  double probability = 0.5;
  NormalizeParams normalize;
};

inline absl::Status ReadFlipAttrs(tf::OpKernelConstruction* ctx, Pixels pixels, Decisions decisions,
                                  FlipAttrs* attrs) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("pairs", &attrs->pairs));
  const std::string bad = check_flip_pairs(attrs->pairs.data(), attrs->pairs.size(), -1);
  if (!bad.empty()) return InvalidArg(bad);
  TF_RETURN_IF_ERROR(ctx->GetAttr("pixel_centers", &attrs->pixel_centers));
  if (pixels == Pixels::kFlipNormalize) {
    TF_RETURN_IF_ERROR(NormalizeParamsFromAttrs(ctx, &attrs->normalize));
  }
  if (decisions == Decisions::kSeeded) {
    float p;
    TF_RETURN_IF_ERROR(ctx->GetAttr("probability", &p));
    if (!(p >= 0.0f && p <= 1.0f)) return InvalidArg("probability must be in [0, 1], got ", p);
    attrs->probability = p;
  }
  return absl::OkStatus();
}

struct FlipInputs {
  ImageShape shape;
  int64_t num_points = 0;
  std::vector<int32_t> partner;  // partner[k]: the point k swaps with (empty when batch is 0)
  int64_t seed0 = 0;             // seeded ops: the seed (host memory)
  int64_t seed1 = 0;
};

inline absl::Status ValidateFlipInputs(tf::OpKernelContext* ctx, const FlipAttrs& attrs,
                                       Pixels pixels, Decisions decisions, FlipInputs* in) {
  const char* images_name = pixels == Pixels::kFlipGrad ? "grad_images" : "images";
  const char* keypoints_name = pixels == Pixels::kFlipGrad ? "grad_keypoints" : "keypoints";
  const tf::Tensor& images = ctx->input(0);
  const tf::Tensor& keypoints = ctx->input(1);
  TF_RETURN_IF_ERROR(ImageShapeOf(images, images_name, &in->shape));
  if (keypoints.dims() != 2) {
    return InvalidArg(keypoints_name, " must have rank 2 [batch, 2 * points], got shape ",
                      keypoints.shape().DebugString());
  }
  if (keypoints.dim_size(0) != in->shape.batch) {
    return InvalidArg("images and keypoints must have the same batch size, got ", images_name, " ",
                      images.shape().DebugString(), " and ", keypoints_name, " ",
                      keypoints.shape().DebugString());
  }
  const int64_t cols = keypoints.dim_size(1);
  if (cols % 2 != 0) {
    return InvalidArg(keypoints_name,
                      " must have an even number of columns (x, y per point), got shape ",
                      keypoints.shape().DebugString());
  }
  in->num_points = cols / 2;
  const std::string bad = check_flip_pairs(attrs.pairs.data(), attrs.pairs.size(), in->num_points);
  if (!bad.empty()) return InvalidArg(bad);
  // The partner table only for samples that exist: an empty batch may declare
  // any number of columns (a [0, 2^38] tensor holds nothing), and a table of
  // cols / 2 entries for it would be gigabytes of nothing. With samples, the
  // keypoints tensor itself holds at least that many values.
  if (in->shape.batch > 0) {
    in->partner.resize(static_cast<size_t>(in->num_points));
    flip_partners(attrs.pairs.data(), attrs.pairs.size(), in->num_points, in->partner.data());
  }

  const tf::Tensor& third = ctx->input(2);
  if (decisions == Decisions::kGiven) {
    if (third.dims() != 1 || third.dim_size(0) != in->shape.batch) {
      return InvalidArg("flip must have shape [", in->shape.batch,
                        "] (one decision per sample), got shape ", third.shape().DebugString());
    }
  } else {
    if (third.dims() != 1 || third.dim_size(0) != 2) {
      return InvalidArg("seed must have shape [2], got shape ", third.shape().DebugString());
    }
    if (third.dtype() == tf::DT_INT32) {
      in->seed0 = third.flat<int32_t>()(0);
      in->seed1 = third.flat<int32_t>()(1);
    } else {
      in->seed0 = third.flat<int64_t>()(0);
      in->seed1 = third.flat<int64_t>()(1);
    }
  }
  return absl::OkStatus();
}

// x -> x_offset - x: W (W - 1 with pixel centres) for a flip; 0 for its
// gradient, since the derivative of W - x is -1.
inline double FlipXOffset(const FlipAttrs& attrs, const ImageShape& shape, Pixels pixels) {
  if (pixels == Pixels::kFlipGrad) return 0.0;
  return static_cast<double>(shape.width - (attrs.pixel_centers ? 1 : 0));
}

}  // namespace tf_face
}  // namespace fkd
