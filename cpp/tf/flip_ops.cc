// TensorFlow face of the horizontal flip with keypoint remap: the ops, their
// shape functions, one OpKernel<Device, ...> per op calling a functor
// specialised for the CPU (kernels/flip.h and, for the fused flip + normalize
// path, kernels/normalize.h) and the GPU (kernels/gpu_launch.h: one launch does
// the decisions, the pixels and the keypoints), and one registration list for
// both devices.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/flip.h"
#include "kernels/gpu_launch.h"
#include "kernels/normalize.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tf/device.h"
#include "tf/op_helpers.h"
#include "tf/validation.h"

namespace fkd {
namespace tf_face {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::DEVICE_GPU;
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

// ------------------------------------------------------------------ functors

// One flip op's tensors, in the device's memory (the seed aside: host memory).
template <typename In, typename Out, typename K>
struct FlipTensors {
  const In* images = nullptr;
  Out* out_images = nullptr;
  const K* keypoints = nullptr;
  K* out_keypoints = nullptr;
  const bool* given = nullptr;  // Decisions::kGiven
  bool* flipped = nullptr;      // Decisions::kSeeded: where the decisions go
};

template <typename Device, typename In, typename Out, typename K, Pixels kPixels,
          Decisions kDecisions>
struct FlipFunctor;

template <typename In, typename Out, typename K, Pixels kPixels, Decisions kDecisions>
struct FlipFunctor<CpuDevice, In, Out, K, kPixels, kDecisions> {
  absl::Status operator()(OpKernelContext* ctx, const FlipAttrs& attrs, const FlipInputs& in,
                          const FlipTensors<In, Out, K>& t) {
    const ImageShape& shape = in.shape;
    const bool* flip = t.given;
    if (kDecisions == Decisions::kSeeded) {
      flip_decisions(flip_seed_key(in.seed0, in.seed1), attrs.probability, 0, shape.batch,
                     t.flipped);
      flip = t.flipped;
    }
    if (shape.size() > 0) {
      if constexpr (kPixels == Pixels::kFlipNormalize) {
        std::vector<ImageAffine> per_image(shape.batch);
        ComputeAffineParams(ctx, t.images, shape, attrs.normalize, per_image.data());
        ParallelForMemoryBound(ctx, shape.rows(), shape.row_size() * (sizeof(In) + sizeof(Out)),
                               [&](int64_t b, int64_t e) {
                                 normalize_rows(t.images, t.out_images, shape, per_image.data(),
                                                flip, b, e);
                               });
      } else {
        static_assert(std::is_same<In, Out>::value, "a plain flip keeps the dtype");
        ParallelForMemoryBound(
            ctx, shape.rows(), shape.row_size() * 2 * sizeof(In),
            [&](int64_t b, int64_t e) { flip_rows(t.images, t.out_images, shape, flip, b, e); });
      }
    }
    if (shape.batch > 0) {
      const K x_offset = static_cast<K>(FlipXOffset(attrs, shape, kPixels));
      flip_keypoints(t.keypoints, t.out_keypoints, in.num_points, flip, in.partner.data(), x_offset,
                     0, shape.batch);
    }
    return absl::OkStatus();
  }
};

template <typename In, typename Out, typename K, Pixels kPixels, Decisions kDecisions>
struct FlipFunctor<GpuDevice, In, Out, K, kPixels, kDecisions> {
  absl::Status operator()(OpKernelContext* ctx, const FlipAttrs& attrs, const FlipInputs& in,
                          const FlipTensors<In, Out, K>& t) {
    if (in.shape.batch == 0) return absl::OkStatus();
    GpuStream stream;
    TF_RETURN_IF_ERROR(GpuStreamOf(ctx, &stream));
    gpu::FlipSpec flip;
    if (kDecisions == Decisions::kGiven) {
      flip.given = t.given;
    } else {
      flip.seeded = true;
      flip.seed0 = in.seed0;
      flip.seed1 = in.seed1;
      flip.probability = attrs.probability;
      flip.flipped = t.flipped;
    }
    gpu::KeypointSpec kp;
    kp.type =
        std::is_same<K, float>::value ? gpu::KeypointType::kFloat : gpu::KeypointType::kDouble;
    kp.in = t.keypoints;
    kp.out = t.out_keypoints;
    kp.num_points = in.num_points;
    kp.partner = in.partner.data();
    kp.x_offset = FlipXOffset(attrs, in.shape, kPixels);
    // The job carries the partner table (2 KB): keep it off the stack.
    auto job = std::make_unique<gpu::ImageJob<In, Out>>();
    TF_RETURN_IF_ERROR(JobStatus(gpu::make_image_job(
        t.images, t.out_images, in.shape,
        kPixels == Pixels::kFlipNormalize ? &attrs.normalize : nullptr, flip, kp,
        /*force_scalar=*/false, job.get())));
    return LaunchStatus(gpu::launch_image_job(*job, stream), ctx->op_kernel().type_string());
  }
};

// ------------------------------------------------------------------ kernel

template <typename Device, typename In, typename Out, typename K, Pixels kPixels,
          Decisions kDecisions>
class FlipOp : public OpKernel {
 public:
  explicit FlipOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadFlipAttrs(ctx, kPixels, kDecisions, &attrs_));
  }

  void Compute(OpKernelContext* ctx) override {
    GuardedCompute(ctx, [&] {
      FlipInputs in;
      OP_REQUIRES_OK(ctx, ValidateFlipInputs(ctx, attrs_, kPixels, kDecisions, &in));
      const Tensor& images = ctx->input(0);
      const Tensor& keypoints = ctx->input(1);
      Tensor* out_images = nullptr;
      Tensor* out_keypoints = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out_images));
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keypoints.shape(), &out_keypoints));
      FlipTensors<In, Out, K> t;
      t.images = images.flat<In>().data();
      t.out_images = out_images->flat<Out>().data();
      t.keypoints = keypoints.flat<K>().data();
      t.out_keypoints = out_keypoints->flat<K>().data();
      if (kDecisions == Decisions::kGiven) {
        t.given = ctx->input(2).flat<bool>().data();
      } else {
        Tensor* flipped = nullptr;
        OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({in.shape.batch}), &flipped));
        t.flipped = flipped->flat<bool>().data();
      }
      OP_REQUIRES_OK(ctx,
                     (FlipFunctor<Device, In, Out, K, kPixels, kDecisions>()(ctx, attrs_, in, t)));
    });
  }

 private:
  FlipAttrs attrs_;
};

// ------------------------------------------------------------------ registrations

#define FKD_REGISTER_SAME(DEVICE, Dev, T, K)                                                   \
  REGISTER_KERNEL_BUILDER(                                                                     \
      Name("Fkd>FlipHorizontal").Device(DEVICE).TypeConstraint<T>("T").TypeConstraint<K>("K"), \
      (FlipOp<Dev, T, T, K, Pixels::kFlip, Decisions::kGiven>));                               \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipHorizontal")                                     \
                              .Device(DEVICE)                                                  \
                              .TypeConstraint<T>("T")                                          \
                              .TypeConstraint<K>("K")                                          \
                              .HostMemory("seed"),                                             \
                          (FlipOp<Dev, T, T, K, Pixels::kFlip, Decisions::kSeeded>));
#define FKD_REGISTER_GRAD(DEVICE, Dev, T, K)                                                       \
  REGISTER_KERNEL_BUILDER(                                                                         \
      Name("Fkd>FlipHorizontalGrad").Device(DEVICE).TypeConstraint<T>("T").TypeConstraint<K>("K"), \
      (FlipOp<Dev, T, T, K, Pixels::kFlipGrad, Decisions::kGiven>));
#define FKD_REGISTER_FUSED(DEVICE, Dev, In, Out, K)                                              \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipNormalize")                                              \
                              .Device(DEVICE)                                                    \
                              .TypeConstraint<In>("Tin")                                         \
                              .TypeConstraint<Out>("Tout")                                       \
                              .TypeConstraint<K>("K"),                                           \
                          (FlipOp<Dev, In, Out, K, Pixels::kFlipNormalize, Decisions::kGiven>)); \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipNormalize")                                        \
                              .Device(DEVICE)                                                    \
                              .TypeConstraint<In>("Tin")                                         \
                              .TypeConstraint<Out>("Tout")                                       \
                              .TypeConstraint<K>("K")                                            \
                              .HostMemory("seed"),                                               \
                          (FlipOp<Dev, In, Out, K, Pixels::kFlipNormalize, Decisions::kSeeded>));
#define FKD_REGISTER_K(DEVICE, Dev, K)                \
  FKD_REGISTER_SAME(DEVICE, Dev, uint8_t, K)          \
  FKD_REGISTER_SAME(DEVICE, Dev, float, K)            \
  FKD_REGISTER_SAME(DEVICE, Dev, double, K)           \
  FKD_REGISTER_GRAD(DEVICE, Dev, float, K)            \
  FKD_REGISTER_GRAD(DEVICE, Dev, double, K)           \
  FKD_REGISTER_FUSED(DEVICE, Dev, uint8_t, float, K)  \
  FKD_REGISTER_FUSED(DEVICE, Dev, uint8_t, double, K) \
  FKD_REGISTER_FUSED(DEVICE, Dev, float, float, K)    \
  FKD_REGISTER_FUSED(DEVICE, Dev, float, double, K)   \
  FKD_REGISTER_FUSED(DEVICE, Dev, double, float, K)   \
  FKD_REGISTER_FUSED(DEVICE, Dev, double, double, K)
#define FKD_REGISTER_ALL(DEVICE, Dev) \
  FKD_REGISTER_K(DEVICE, Dev, float)  \
  FKD_REGISTER_K(DEVICE, Dev, double)
FKD_REGISTER_ALL(DEVICE_CPU, CpuDevice)
#if defined(FKD_OPS_WITH_GPU)
FKD_REGISTER_ALL(DEVICE_GPU, GpuDevice)
#endif

}  // namespace
}  // namespace tf_face
}  // namespace fkd
