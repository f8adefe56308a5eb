// TensorFlow face of the horizontal flip with keypoint remap: op registrations,
// shape functions and CPU kernels. The math lives in kernels/flip.h and, for the
// fused flip + normalize path, kernels/normalize.h.
#include <string>
#include <vector>

#include "kernels/flip.h"
#include "kernels/normalize.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tf/op_helpers.h"
#include "tf/validation.h"

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
// or `seed` (int [2]) (Decisions, in tf/validation.h).
absl::Status FlipShapeFn(InferenceContext* c, const char* images_name, const char* keypoints_name,
                         Decisions decisions) {
  TF_RETURN_IF_ERROR(ImageRank(c, 0, images_name));
  ShapeHandle kp = c->input(1);
  if (c->RankKnown(kp) && c->Rank(kp) != 2) {
    return InvalidArg(keypoints_name, " must have rank 2 [batch, 2 * points], got shape ",
                      c->DebugString(kp));
  }
  TF_RETURN_IF_ERROR(SameDim(c, 0, 0, images_name, 1, 0, keypoints_name,
                             "images and keypoints must have the same batch size"));
  // Odd counts, negative and repeated indices show even when the number of
  // points is not known yet (num_points -1 skips only the upper bound).
  int64_t num_points = -1;
  if (c->RankKnown(kp) && c->ValueKnown(c->Dim(kp, 1))) {
    const int64_t cols = c->Value(c->Dim(kp, 1));
    if (cols % 2 != 0) {
      return InvalidArg(keypoints_name,
                        " must have an even number of columns (x, y per "
                        "point), got shape ",
                        c->DebugString(kp));
    }
    num_points = cols / 2;
  }
  std::vector<int64_t> pairs;
  TF_RETURN_IF_ERROR(c->GetAttr("pairs", &pairs));
  const std::string bad = check_flip_pairs(pairs.data(), pairs.size(), num_points);
  if (!bad.empty()) return InvalidArg(bad);
  ShapeHandle third = c->input(2);
  if (decisions == Decisions::kGiven) {
    if (c->RankKnown(third) && c->Rank(third) != 1) {
      return InvalidArg("flip must be a vector [batch], got shape ", c->DebugString(third));
    }
    TF_RETURN_IF_ERROR(
        SameDim(c, 0, 0, images_name, 2, 0, "flip", "flip needs one decision per sample"));
    // Also against the keypoints: the images' batch size may be the unknown one.
    TF_RETURN_IF_ERROR(
        SameDim(c, 1, 0, keypoints_name, 2, 0, "flip", "flip needs one decision per sample"));
  } else {
    ShapeHandle unused;
    if (!c->WithRank(third, 1, &unused).ok() ||
        (c->ValueKnown(c->Dim(third, 0)) && c->Value(c->Dim(third, 0)) != 2)) {
      return InvalidArg("seed must have shape [2], got shape ", c->DebugString(third));
    }
  }
  c->set_output(0, c->input(0));
  c->set_output(1, c->input(1));
  if (decisions == Decisions::kSeeded) {
    c->set_output(2, c->Vector(c->Dim(c->input(0), 0)));
  }
  return absl::OkStatus();
}

#define FKD_FLIP_ATTRS Attr("pairs: list(int)").Attr("pixel_centers: bool = false")
#define FKD_RANDOM_ATTRS Attr("probability: float = 0.5").Attr("Tseed: {int32, int64} = DT_INT64")

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
    .FKD_FLIP_ATTRS.FKD_RANDOM_ATTRS
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
    .FKD_FLIP_ATTRS.FKD_NORMALIZE_ATTRS
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
    .FKD_FLIP_ATTRS.FKD_NORMALIZE_ATTRS.FKD_RANDOM_ATTRS
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

template <typename In, typename Out, typename K, Pixels kPixels, Decisions kDecisions>
class FlipOp : public OpKernel {
 public:
  explicit FlipOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadFlipAttrs(ctx, kPixels, kDecisions, &attrs_));
  }

  void Compute(OpKernelContext* ctx) override {
    FlipInputs in;
    OP_REQUIRES_OK(ctx, ValidateFlipInputs(ctx, attrs_, kPixels, kDecisions, &in));
    const ImageShape& shape = in.shape;
    const int64_t num_points = in.num_points;
    const std::vector<int32_t>& partner = in.partner;
    const Tensor& images = ctx->input(0);
    const Tensor& keypoints = ctx->input(1);

    const bool* flip = nullptr;
    if (kDecisions == Decisions::kGiven) {
      flip = ctx->input(2).flat<bool>().data();
    } else {
      Tensor* flipped = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({shape.batch}), &flipped));
      bool* decisions = flipped->flat<bool>().data();
      flip_decisions(flip_seed_key(in.seed0, in.seed1), attrs_.probability, 0, shape.batch,
                     decisions);
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
        ComputeAffineParams(ctx, x, shape, attrs_.normalize, per_image.data());
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
    const K x_offset = static_cast<K>(FlipXOffset(attrs_, shape, kPixels));
    flip_keypoints(keypoints.flat<K>().data(), out_keypoints->flat<K>().data(), num_points, flip,
                   partner.data(), x_offset, 0, shape.batch);
  }

 private:
  FlipAttrs attrs_;
};

#define FKD_REGISTER_SAME(T, K)                                                                    \
  REGISTER_KERNEL_BUILDER(                                                                         \
      Name("Fkd>FlipHorizontal").Device(DEVICE_CPU).TypeConstraint<T>("T").TypeConstraint<K>("K"), \
      (FlipOp<T, T, K, Pixels::kFlip, Decisions::kGiven>));                                        \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipHorizontal")                                         \
                              .Device(DEVICE_CPU)                                                  \
                              .TypeConstraint<T>("T")                                              \
                              .TypeConstraint<K>("K")                                              \
                              .HostMemory("seed"),                                                 \
                          (FlipOp<T, T, K, Pixels::kFlip, Decisions::kSeeded>));
#define FKD_REGISTER_GRAD(T, K)                          \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipHorizontalGrad") \
                              .Device(DEVICE_CPU)        \
                              .TypeConstraint<T>("T")    \
                              .TypeConstraint<K>("K"),   \
                          (FlipOp<T, T, K, Pixels::kFlipGrad, Decisions::kGiven>));
#define FKD_REGISTER_FUSED(In, Out, K)                                                      \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipNormalize")                                         \
                              .Device(DEVICE_CPU)                                           \
                              .TypeConstraint<In>("Tin")                                    \
                              .TypeConstraint<Out>("Tout")                                  \
                              .TypeConstraint<K>("K"),                                      \
                          (FlipOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kGiven>)); \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipNormalize")                                   \
                              .Device(DEVICE_CPU)                                           \
                              .TypeConstraint<In>("Tin")                                    \
                              .TypeConstraint<Out>("Tout")                                  \
                              .TypeConstraint<K>("K")                                       \
                              .HostMemory("seed"),                                          \
                          (FlipOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kSeeded>));
#define FKD_REGISTER_K(K)                \
  FKD_REGISTER_SAME(uint8_t, K)          \
  FKD_REGISTER_SAME(float, K)            \
  FKD_REGISTER_SAME(double, K)           \
  FKD_REGISTER_GRAD(float, K)            \
  FKD_REGISTER_GRAD(double, K)           \
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
