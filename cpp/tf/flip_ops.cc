// TensorFlow face of the horizontal flip with keypoint remap: op registrations,
// shape functions and CPU kernels. The math lives in kernels/flip.h and, for the
// fused flip + normalize path, kernels/normalize.h.
#include <string>
#include <vector>

#include "kernels/flip.h"
#include "kernels/normalize.h"
#include "tf/op_helpers.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace fkd {
namespace tf_face {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;

using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Inputs 0 and 1 are always images and keypoints; input 2 is `flip` (bool [B])
// or `seed` (int [2]).
enum class Decisions { kGiven, kSeeded };

absl::Status FlipShapeFn(InferenceContext* c, const char* images_name, const char* keypoints_name,
                   Decisions decisions) {
  TF_RETURN_IF_ERROR(ImageRank(c, 0, images_name));
  ShapeHandle kp = c->input(1);
  if (c->RankKnown(kp) && c->Rank(kp) != 2) {
    return InvalidArg(keypoints_name,
                                       " must have rank 2 [batch, 2 * points], got shape ",
                                       c->DebugString(kp));
  }
  TF_RETURN_IF_ERROR(SameDim(c, 0, 0, images_name, 1, 0, keypoints_name,
                             "images and keypoints must have the same batch size"));
  if (c->RankKnown(kp) && c->ValueKnown(c->Dim(kp, 1))) {
    const int64_t cols = c->Value(c->Dim(kp, 1));
    if (cols % 2 != 0) {
      return InvalidArg(keypoints_name,
                                         " must have an even number of columns (x, y per "
                                         "point), got shape ",
                                         c->DebugString(kp));
    }
    std::vector<int64_t> pairs;
    TF_RETURN_IF_ERROR(c->GetAttr("pairs", &pairs));
    const std::string bad = check_flip_pairs(pairs.data(), pairs.size(), cols / 2);
    if (!bad.empty()) return InvalidArg(bad);
  }
  ShapeHandle third = c->input(2);
  if (decisions == Decisions::kGiven) {
    if (c->RankKnown(third) && c->Rank(third) != 1) {
      return InvalidArg("flip must be a vector [batch], got shape ",
                                         c->DebugString(third));
    }
    TF_RETURN_IF_ERROR(SameDim(c, 0, 0, images_name, 2, 0, "flip",
                               "flip needs one decision per sample"));
  } else {
    ShapeHandle unused;
    if (!c->WithRank(third, 1, &unused).ok() ||
        (c->ValueKnown(c->Dim(third, 0)) && c->Value(c->Dim(third, 0)) != 2)) {
      return InvalidArg("seed must have shape [2], got shape ",
                                         c->DebugString(third));
    }
  }
  c->set_output(0, c->input(0));
  c->set_output(1, c->input(1));
  if (decisions == Decisions::kSeeded) {
    c->set_output(2, c->Vector(c->Dim(c->input(0), 0)));
  }
  return absl::OkStatus();
}

#define FKD_FLIP_ATTRS                                                   \
  Attr("pairs: list(int)").Attr("pixel_centers: bool = false")
#define FKD_RANDOM_ATTRS                                                 \
  Attr("probability: float = 0.5").Attr("Tseed: {int32, int64} = DT_INT64")

REGISTER_OP("Fkd>FlipHorizontal")
    .Input("images: T")
    .Input("keypoints: K")
    .Input("flip: bool")
    .Output("flipped_images: T")
    .Output("flipped_keypoints: K")
    .Attr("T: {uint8, float, double}")
    .Attr("K: {float, double}")
    .FKD_FLIP_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      return FlipShapeFn(c, "images", "keypoints", Decisions::kGiven);
    })
    .Doc(R"doc(
Mirrors the images whose `flip` is true and remaps their keypoints: x -> W - x
(W - 1 - x with pixel_centers) and each left/right pair swapped.
)doc");

REGISTER_OP("Fkd>RandomFlipHorizontal")
    .Input("images: T")
    .Input("keypoints: K")
    .Input("seed: Tseed")
    .Output("flipped_images: T")
    .Output("flipped_keypoints: K")
    .Output("flipped: bool")
    .Attr("T: {uint8, float, double}")
    .Attr("K: {float, double}")
    .FKD_FLIP_ATTRS
    .FKD_RANDOM_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      return FlipShapeFn(c, "images", "keypoints", Decisions::kSeeded);
    })
    .Doc(R"doc(
FlipHorizontal with decisions drawn from a stateless seed (same seed, same
decisions); returns them as `flipped`.
)doc");

REGISTER_OP("Fkd>FlipNormalize")
    .Input("images: Tin")
    .Input("keypoints: K")
    .Input("flip: bool")
    .Output("normalized: Tout")
    .Output("flipped_keypoints: K")
    .Attr("Tin: {uint8, float, double}")
    .Attr("Tout: {float, double} = DT_FLOAT")
    .Attr("K: {float, double}")
    .FKD_FLIP_ATTRS
    .FKD_NORMALIZE_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      return FlipShapeFn(c, "images", "keypoints", Decisions::kGiven);
    })
    .Doc(R"doc(
FlipHorizontal followed by NormalizeImages in one pass over the pixels.
)doc");

REGISTER_OP("Fkd>RandomFlipNormalize")
    .Input("images: Tin")
    .Input("keypoints: K")
    .Input("seed: Tseed")
    .Output("normalized: Tout")
    .Output("flipped_keypoints: K")
    .Output("flipped: bool")
    .Attr("Tin: {uint8, float, double}")
    .Attr("Tout: {float, double} = DT_FLOAT")
    .Attr("K: {float, double}")
    .FKD_FLIP_ATTRS
    .FKD_NORMALIZE_ATTRS
    .FKD_RANDOM_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      return FlipShapeFn(c, "images", "keypoints", Decisions::kSeeded);
    })
    .Doc(R"doc(
RandomFlipHorizontal followed by NormalizeImages in one pass over the pixels.
)doc");

REGISTER_OP("Fkd>FlipHorizontalGrad")
    .Input("grad_images: T")
    .Input("grad_keypoints: K")
    .Input("flip: bool")
    .Output("grad_input_images: T")
    .Output("grad_input_keypoints: K")
    .Attr("T: {float, double}")
    .Attr("K: {float, double}")
    .FKD_FLIP_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      return FlipShapeFn(c, "grad_images", "grad_keypoints", Decisions::kGiven);
    })
    .Doc(R"doc(
Gradient of FlipHorizontal: the image gradient is mirrored back, the keypoint
gradient is remapped to the partner slots with its x component negated.
)doc");

// What a kernel does with the pixels.
enum class Pixels { kFlip, kFlipNormalize, kFlipGrad };

template <typename In, typename Out, typename K, Pixels kPixels, Decisions kDecisions>
class FlipOp : public OpKernel {
 public:
  explicit FlipOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pairs", &pairs_));
    const std::string bad = check_flip_pairs(pairs_.data(), pairs_.size(), -1);
    OP_REQUIRES(ctx, bad.empty(), InvalidArg(bad));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pixel_centers", &pixel_centers_));
    if (kPixels == Pixels::kFlipNormalize) {
      OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &normalize_));
    }
    if (kDecisions == Decisions::kSeeded) {
      float p;
      OP_REQUIRES_OK(ctx, ctx->GetAttr("probability", &p));
      OP_REQUIRES(ctx, p >= 0.0f && p <= 1.0f,
                  InvalidArg("probability must be in [0, 1], got ", p));
      probability_ = p;
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const char* images_name = kPixels == Pixels::kFlipGrad ? "grad_images" : "images";
    const char* keypoints_name = kPixels == Pixels::kFlipGrad ? "grad_keypoints" : "keypoints";
    const Tensor& images = ctx->input(0);
    const Tensor& keypoints = ctx->input(1);
    ImageShape shape;
    OP_REQUIRES_OK(ctx, ImageShapeOf(images, images_name, &shape));
    OP_REQUIRES(ctx, keypoints.dims() == 2,
                InvalidArg(keypoints_name,
                                            " must have rank 2 [batch, 2 * points], got shape ",
                                            keypoints.shape().DebugString()));
    OP_REQUIRES(ctx, keypoints.dim_size(0) == shape.batch,
                InvalidArg(
                    "images and keypoints must have the same batch size, got ", images_name,
                    " ", images.shape().DebugString(), " and ", keypoints_name, " ",
                    keypoints.shape().DebugString()));
    const int64_t cols = keypoints.dim_size(1);
    OP_REQUIRES(ctx, cols % 2 == 0,
                InvalidArg(keypoints_name,
                                            " must have an even number of columns (x, y per "
                                            "point), got shape ",
                                            keypoints.shape().DebugString()));
    const int64_t num_points = cols / 2;
    const std::string bad = check_flip_pairs(pairs_.data(), pairs_.size(), num_points);
    OP_REQUIRES(ctx, bad.empty(), InvalidArg(bad));
    std::vector<int32_t> partner(num_points);
    flip_partners(pairs_.data(), pairs_.size(), num_points, partner.data());

    const bool* flip = nullptr;
    if (kDecisions == Decisions::kGiven) {
      const Tensor& given = ctx->input(2);
      OP_REQUIRES(ctx, given.dims() == 1 && given.dim_size(0) == shape.batch,
                  InvalidArg("flip must have shape [", shape.batch,
                                              "] (one decision per sample), got shape ",
                                              given.shape().DebugString()));
      flip = given.flat<bool>().data();
    } else {
      const Tensor& seed = ctx->input(2);
      OP_REQUIRES(ctx, seed.dims() == 1 && seed.dim_size(0) == 2,
                  InvalidArg("seed must have shape [2], got shape ",
                                              seed.shape().DebugString()));
      int64_t s0, s1;
      if (seed.dtype() == tf::DT_INT32) {
        s0 = seed.flat<int32_t>()(0);
        s1 = seed.flat<int32_t>()(1);
      } else {
        s0 = seed.flat<int64_t>()(0);
        s1 = seed.flat<int64_t>()(1);
      }
      Tensor* flipped = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({shape.batch}), &flipped));
      bool* decisions = flipped->flat<bool>().data();
      flip_decisions(flip_seed_key(s0, s1), probability_, 0, shape.batch, decisions);
      flip = decisions;
    }

    Tensor* out_images = nullptr;
    Tensor* out_keypoints = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out_images));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keypoints.shape(), &out_keypoints));

    const In* x = images.flat<In>().data();
    Out* y = out_images->flat<Out>().data();
    if (shape.size() > 0) {
      if constexpr (kPixels == Pixels::kFlipNormalize) {
        std::vector<ImageAffine> per_image(shape.batch);
        ComputeAffineParams(ctx, x, shape, normalize_, per_image.data());
        ParallelForMemoryBound(ctx, shape.rows(), shape.row_size() * (sizeof(In) + sizeof(Out)),
                               [&](int64_t b, int64_t e) {
                                 normalize_rows(x, y, shape, per_image.data(), flip, b, e);
                               });
      } else {
        static_assert(std::is_same<In, Out>::value, "a plain flip keeps the dtype");
        ParallelForMemoryBound(ctx, shape.rows(), shape.row_size() * 2 * sizeof(In),
                               [&](int64_t b, int64_t e) { flip_rows(x, y, shape, flip, b, e); });
      }
    }
    // The gradient of x' = W - x is -1: the same remap with offset 0.
    const K x_offset = kPixels == Pixels::kFlipGrad
                           ? K(0)
                           : static_cast<K>(shape.width - (pixel_centers_ ? 1 : 0));
    flip_keypoints(keypoints.flat<K>().data(), out_keypoints->flat<K>().data(), num_points, flip,
                   partner.data(), x_offset, 0, shape.batch);
  }

 private:
  std::vector<int64_t> pairs_;
  bool pixel_centers_ = false;
  double probability_ = 0.5;
  NormalizeParams normalize_;
};

#define FKD_REGISTER_SAME(T, K)                                                           \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("Fkd>FlipHorizontal").Device(DEVICE_CPU).TypeConstraint<T>("T").TypeConstraint<K>("K"), \
      (FlipOp<T, T, K, Pixels::kFlip, Decisions::kGiven>));                               \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipHorizontal")                               \
                              .Device(DEVICE_CPU)                                        \
                              .TypeConstraint<T>("T")                                    \
                              .TypeConstraint<K>("K")                                    \
                              .HostMemory("seed"),                                       \
                          (FlipOp<T, T, K, Pixels::kFlip, Decisions::kSeeded>));
#define FKD_REGISTER_GRAD(T, K)                                                           \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipHorizontalGrad")                                 \
                              .Device(DEVICE_CPU)                                        \
                              .TypeConstraint<T>("T")                                    \
                              .TypeConstraint<K>("K"),                                   \
                          (FlipOp<T, T, K, Pixels::kFlipGrad, Decisions::kGiven>));
#define FKD_REGISTER_FUSED(In, Out, K)                                                    \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipNormalize")                                      \
                              .Device(DEVICE_CPU)                                        \
                              .TypeConstraint<In>("Tin")                                 \
                              .TypeConstraint<Out>("Tout")                               \
                              .TypeConstraint<K>("K"),                                   \
                          (FlipOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kGiven>)); \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipNormalize")                                \
                              .Device(DEVICE_CPU)                                        \
                              .TypeConstraint<In>("Tin")                                 \
                              .TypeConstraint<Out>("Tout")                               \
                              .TypeConstraint<K>("K")                                    \
                              .HostMemory("seed"),                                       \
                          (FlipOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kSeeded>));
#define FKD_REGISTER_K(K)          \
  FKD_REGISTER_SAME(uint8_t, K)    \
  FKD_REGISTER_SAME(float, K)      \
  FKD_REGISTER_SAME(double, K)     \
  FKD_REGISTER_GRAD(float, K)      \
  FKD_REGISTER_GRAD(double, K)     \
  FKD_REGISTER_FUSED(uint8_t, float, K)  \
  FKD_REGISTER_FUSED(uint8_t, double, K) \
  FKD_REGISTER_FUSED(float, float, K)    \
  FKD_REGISTER_FUSED(float, double, K)   \
  FKD_REGISTER_FUSED(double, float, K)   \
  FKD_REGISTER_FUSED(double, double, K)
FKD_REGISTER_K(float)
FKD_REGISTER_K(double)

}  // namespace
}  // namespace tf_face
}  // namespace fkd
