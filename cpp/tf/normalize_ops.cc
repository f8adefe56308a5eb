// TensorFlow face of image normalization: the ops, their shape functions, one
// OpKernel<Device, In, Out> per op calling a functor specialised for the CPU
// (kernels/normalize.h, on TF's thread pool) and the GPU (kernels/gpu_launch.h,
// on the op's stream), and one registration list for both devices.
#include <memory>
#include <vector>

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
using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("Fkd>NormalizeImages")
    .Input("images: Tin")
    .Output("normalized: Tout")
    .Attr("Tin: {uint8, float, double}")
    .Attr("Tout: {float, double} = DT_FLOAT")
    .FKD_NORMALIZE_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(ImageRank(c, 0, "images"));
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Normalizes a batch of images [B, H, W] or [B, H, W, C] to floating point.

scale: x * scale. affine: (x - mean) / stddev. standardize: per image,
(x - mean) / max(std, 1 / sqrt(N)), exactly tf.image.per_image_standardization.
)doc");

REGISTER_OP("Fkd>NormalizeImagesGrad")
    .Input("grad: Tout")
    .Input("images: Tin")
    .Output("grad_images: Tin")
    .Attr("Tin: {float, double}")
    .Attr("Tout: {float, double}")
    .FKD_NORMALIZE_ATTRS.SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(ImageRank(c, 1, "images"));
      tf::shape_inference::ShapeHandle merged;
      if (!c->Merge(c->input(0), c->input(1), &merged).ok()) {
        return InvalidArg("grad and images must have the same shape, got ",
                          c->DebugString(c->input(0)), " and ", c->DebugString(c->input(1)));
      }
      c->set_output(0, c->input(1));
      return absl::OkStatus();
    });

// ------------------------------------------------------------------ functors

// y = normalize(x) for a batch of `shape` (not empty).
template <typename Device, typename In, typename Out>
struct NormalizeFunctor;

template <typename In, typename Out>
struct NormalizeFunctor<CpuDevice, In, Out> {
  absl::Status operator()(OpKernelContext* ctx, const In* x, Out* y, const ImageShape& shape,
                          const NormalizeParams& params) {
    std::vector<ImageAffine> per_image(shape.batch);
    ComputeAffineParams(ctx, x, shape, params, per_image.data());
    ParallelForMemoryBound(ctx, shape.rows(), shape.row_size() * (sizeof(In) + sizeof(Out)),
                           [&](int64_t b, int64_t e) {
                             normalize_rows(x, y, shape, per_image.data(), /*flip=*/nullptr, b, e);
                           });
    return absl::OkStatus();
  }
};

template <typename In, typename Out>
struct NormalizeFunctor<GpuDevice, In, Out> {
  absl::Status operator()(OpKernelContext* ctx, const In* x, Out* y, const ImageShape& shape,
                          const NormalizeParams& params) {
    GpuStream stream;
    TF_RETURN_IF_ERROR(GpuStreamOf(ctx, &stream));
    // The job carries a keypoint table (2 KB): keep it off the stack.
    auto job = std::make_unique<gpu::ImageJob<In, Out>>();
    TF_RETURN_IF_ERROR(
        JobStatus(gpu::make_image_job(x, y, shape, &params, gpu::FlipSpec{}, gpu::KeypointSpec{},
                                      /*force_scalar=*/false, job.get())));
    return LaunchStatus(gpu::launch_image_job(*job, stream), "NormalizeImages");
  }
};

// dx from the gradient g of the normalized output.
template <typename Device, typename In, typename Out>
struct NormalizeGradFunctor;

template <typename In, typename Out>
struct NormalizeGradFunctor<CpuDevice, In, Out> {
  absl::Status operator()(OpKernelContext* ctx, const Out* g, const In* x, In* dx,
                          const ImageShape& shape, const NormalizeParams& params) {
    ParallelFor(ctx, shape.batch, 6 * shape.image_size(),
                [&](int64_t b, int64_t e) { normalize_grad(g, x, shape, params, b, e, dx); });
    return absl::OkStatus();
  }
};

template <typename In, typename Out>
struct NormalizeGradFunctor<GpuDevice, In, Out> {
  absl::Status operator()(OpKernelContext* ctx, const Out* g, const In* x, In* dx,
                          const ImageShape& shape, const NormalizeParams& params) {
    GpuStream stream;
    TF_RETURN_IF_ERROR(GpuStreamOf(ctx, &stream));
    gpu::NormalizeGradJob<In, Out> job;
    TF_RETURN_IF_ERROR(JobStatus(
        gpu::make_normalize_grad_job(g, x, dx, shape, params, /*force_scalar=*/false, &job)));
    return LaunchStatus(gpu::launch_normalize_grad_job(job, stream), "NormalizeImagesGrad");
  }
};

// ------------------------------------------------------------------ kernels

template <typename Device, typename In, typename Out>
class NormalizeImagesOp : public OpKernel {
 public:
  explicit NormalizeImagesOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    GuardedCompute(ctx, [&] {
      const Tensor& images = ctx->input(0);
      ImageShape shape;
      OP_REQUIRES_OK(ctx, ImageShapeOf(images, "images", &shape));
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
      if (shape.size() == 0) return;
      OP_REQUIRES_OK(ctx,
                     NormalizeFunctor<Device, In, Out>()(ctx, images.flat<In>().data(),
                                                         out->flat<Out>().data(), shape, params_));
    });
  }

 private:
  NormalizeParams params_;
};

template <typename Device, typename In, typename Out>
class NormalizeImagesGradOp : public OpKernel {
 public:
  explicit NormalizeImagesGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    GuardedCompute(ctx, [&] {
      const Tensor& grad = ctx->input(0);
      const Tensor& images = ctx->input(1);
      ImageShape shape;
      OP_REQUIRES_OK(ctx, ValidateNormalizeGrad(grad, images, &shape));
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
      if (shape.size() == 0) return;
      OP_REQUIRES_OK(ctx, NormalizeGradFunctor<Device, In, Out>()(
                              ctx, grad.flat<Out>().data(), images.flat<In>().data(),
                              out->flat<In>().data(), shape, params_));
    });
  }

 private:
  NormalizeParams params_;
};

// ------------------------------------------------------------------ registrations

#define FKD_REGISTER_FORWARD(DEVICE, Dev, In, Out)          \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImages")       \
                              .Device(DEVICE)               \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          (NormalizeImagesOp<Dev, In, Out>));
#define FKD_REGISTER_GRAD(DEVICE, Dev, In, Out)             \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImagesGrad")   \
                              .Device(DEVICE)               \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          (NormalizeImagesGradOp<Dev, In, Out>));
#define FKD_REGISTER_ALL(DEVICE, Dev)                \
  FKD_REGISTER_FORWARD(DEVICE, Dev, uint8_t, float)  \
  FKD_REGISTER_FORWARD(DEVICE, Dev, uint8_t, double) \
  FKD_REGISTER_FORWARD(DEVICE, Dev, float, float)    \
  FKD_REGISTER_FORWARD(DEVICE, Dev, float, double)   \
  FKD_REGISTER_FORWARD(DEVICE, Dev, double, float)   \
  FKD_REGISTER_FORWARD(DEVICE, Dev, double, double)  \
  FKD_REGISTER_GRAD(DEVICE, Dev, float, float)       \
  FKD_REGISTER_GRAD(DEVICE, Dev, float, double)      \
  FKD_REGISTER_GRAD(DEVICE, Dev, double, float)      \
  FKD_REGISTER_GRAD(DEVICE, Dev, double, double)
FKD_REGISTER_ALL(DEVICE_CPU, CpuDevice)
#if defined(FKD_OPS_WITH_GPU)
FKD_REGISTER_ALL(DEVICE_GPU, GpuDevice)
#endif
#undef FKD_REGISTER_FORWARD
#undef FKD_REGISTER_GRAD
#undef FKD_REGISTER_ALL

}  // namespace
}  // namespace tf_face
}  // namespace fkd
