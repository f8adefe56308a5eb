// DEVICE_GPU kernels of every fkd_ops op (built when FKD_OPS_CUDA finds nvcc).
//
// Each kernel validates its inputs with the CPU kernel's checks (tf/validation.h),
// allocates its outputs in device memory and enqueues one CUDA launcher
// (cpp/kernels/*_gpu.h) on the op's stream; nothing waits for the device. Small
// host-side inputs (the seed) are HostMemory. The masked RMSE forward writes its
// three scalars on the device, and its gradient reads them (and the upstream
// gradients) where they lie. All reductions run in a fixed order, so results are
// the same bits run after run, as tf.config.experimental.enable_op_determinism
// expects.
//
// Plain C++: the CUDA stream comes from TensorFlow's stream executor, so no CUDA
// or Eigen GPU header is needed.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/gpu_common.h"
#include "kernels/image_gpu.h"
#include "kernels/masked_rmse_gpu.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tf/op_helpers.h"
#include "tf/validation.h"
#include "xla/stream_executor/stream.h"

namespace fkd {
namespace tf_face {
namespace {

using ::tensorflow::DEVICE_GPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// The CUDA stream this op's work goes on.
absl::Status StreamOf(OpKernelContext* ctx, GpuStream* stream) {
  const tf::DeviceContext* device_context = ctx->op_device_context();
  if (device_context == nullptr || device_context->stream() == nullptr) {
    return absl::InternalError("fkd_ops: no GPU stream for this op");
  }
  *stream = static_cast<GpuStream>(device_context->stream()->platform_specific_handle().stream);
  if (*stream == nullptr) return absl::InternalError("fkd_ops: the GPU stream has no CUDA handle");
  return absl::OkStatus();
}

absl::Status LaunchStatus(GpuStatus status, const char* what) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("fkd_ops: launching ", what, " on the GPU failed: ",
                                          gpu_error_name(status), ": ", gpu_error_string(status)));
}

// A job maker's complaint (sizes beyond what the GPU kernels take) as InvalidArgument.
absl::Status JobStatus(const std::string& problem) {
  return problem.empty() ? absl::OkStatus() : InvalidArg(problem);
}

// ------------------------------------------------------------------ masked RMSE

template <typename T>
class MaskedRmseGpuOp : public OpKernel {
 public:
  explicit MaskedRmseGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& predictions = ctx->input(0);
    const Tensor& targets = ctx->input(1);
    OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
    GpuStream stream;
    OP_REQUIRES_OK(ctx, StreamOf(ctx, &stream));
    Tensor* out[3];
    for (int i = 0; i < 3; ++i)
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, TensorShape({}), &out[i]));
    const int64_t n = predictions.NumElements();
    const int64_t workspace_bytes = gpu::masked_rmse_gpu_workspace_bytes(n);
    Tensor workspace;
    if (workspace_bytes > 0) {
      OP_REQUIRES_OK(ctx,
                     ctx->allocate_temp(tf::DT_INT8, TensorShape({workspace_bytes}), &workspace));
    }
    gpu::MaskedRmseJob<T> job;
    OP_REQUIRES_OK(
        ctx, JobStatus(gpu::make_masked_rmse_job(
                 predictions.flat<T>().data(), targets.flat<T>().data(), n, squared_,
                 out[0]->flat<T>().data(), out[1]->flat<T>().data(), out[2]->flat<T>().data(),
                 workspace_bytes > 0 ? workspace.flat<int8_t>().data() : nullptr, workspace_bytes,
                 &job)));
    OP_REQUIRES_OK(ctx, LaunchStatus(gpu::launch_masked_rmse(job, stream), "MaskedRmse"));
  }

 private:
  bool squared_ = false;
};

template <typename T>
class MaskedRmseGradGpuOp : public OpKernel {
 public:
  explicit MaskedRmseGradGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& predictions = ctx->input(0);
    const Tensor& targets = ctx->input(1);
    OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
    OP_REQUIRES_OK(ctx, ValidateMaskedRmseGradScalars(ctx));
    GpuStream stream;
    OP_REQUIRES_OK(ctx, StreamOf(ctx, &stream));
    Tensor* grad_p = nullptr;
    Tensor* grad_t = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, predictions.shape(), &grad_p));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, targets.shape(), &grad_t));
    // The four scalars stay in device memory: the kernel reads them itself.
    const T* scalar[4];
    for (int i = 0; i < 4; ++i) scalar[i] = ctx->input(2 + i).flat<T>().data();
    gpu::MaskedRmseGradJob<T> job;
    OP_REQUIRES_OK(ctx, JobStatus(gpu::make_masked_rmse_grad_job(
                            predictions.flat<T>().data(), targets.flat<T>().data(),
                            predictions.NumElements(), scalar[0], scalar[1], scalar[2], scalar[3],
                            squared_, grad_p->flat<T>().data(), grad_t->flat<T>().data(), &job)));
    OP_REQUIRES_OK(ctx, LaunchStatus(gpu::launch_masked_rmse_grad(job, stream), "MaskedRmseGrad"));
  }

 private:
  bool squared_ = false;
};

// ------------------------------------------------------------------ normalization

template <typename In, typename Out>
class NormalizeImagesGpuOp : public OpKernel {
 public:
  explicit NormalizeImagesGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& images = ctx->input(0);
    ImageShape shape;
    OP_REQUIRES_OK(ctx, ImageShapeOf(images, "images", &shape));
    GpuStream stream;
    OP_REQUIRES_OK(ctx, StreamOf(ctx, &stream));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
    if (shape.size() == 0) return;
    // The job carries a keypoint table (2 KB): keep it off the stack.
    auto job = std::make_unique<gpu::ImageJob<In, Out>>();
    OP_REQUIRES_OK(
        ctx, JobStatus(gpu::make_image_job(images.flat<In>().data(), out->flat<Out>().data(), shape,
                                           &params_, gpu::FlipSpec{}, gpu::KeypointSpec{},
                                           /*force_scalar=*/false, job.get())));
    OP_REQUIRES_OK(ctx, LaunchStatus(gpu::launch_image_job(*job, stream), "NormalizeImages"));
  }

 private:
  NormalizeParams params_;
};

template <typename In, typename Out>
class NormalizeImagesGradGpuOp : public OpKernel {
 public:
  explicit NormalizeImagesGradGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad = ctx->input(0);
    const Tensor& images = ctx->input(1);
    ImageShape shape;
    OP_REQUIRES_OK(ctx, ValidateNormalizeGrad(grad, images, &shape));
    GpuStream stream;
    OP_REQUIRES_OK(ctx, StreamOf(ctx, &stream));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
    if (shape.size() == 0) return;
    gpu::NormalizeGradJob<In, Out> job;
    OP_REQUIRES_OK(ctx, JobStatus(gpu::make_normalize_grad_job(
                            grad.flat<Out>().data(), images.flat<In>().data(),
                            out->flat<In>().data(), shape, params_, /*force_scalar=*/false, &job)));
    OP_REQUIRES_OK(
        ctx, LaunchStatus(gpu::launch_normalize_grad_job(job, stream), "NormalizeImagesGrad"));
  }

 private:
  NormalizeParams params_;
};

// ------------------------------------------------------------------ flip

template <typename In, typename Out, typename K, Pixels kPixels, Decisions kDecisions>
class FlipGpuOp : public OpKernel {
 public:
  explicit FlipGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadFlipAttrs(ctx, kPixels, kDecisions, &attrs_));
  }

  void Compute(OpKernelContext* ctx) override {
    FlipInputs in;
    OP_REQUIRES_OK(ctx, ValidateFlipInputs(ctx, attrs_, kPixels, kDecisions, &in));
    GpuStream stream;
    OP_REQUIRES_OK(ctx, StreamOf(ctx, &stream));
    const Tensor& images = ctx->input(0);
    const Tensor& keypoints = ctx->input(1);
    Tensor* out_images = nullptr;
    Tensor* out_keypoints = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out_images));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keypoints.shape(), &out_keypoints));

    gpu::FlipSpec flip;
    if (kDecisions == Decisions::kGiven) {
      flip.given = ctx->input(2).flat<bool>().data();
    } else {
      Tensor* flipped = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({in.shape.batch}), &flipped));
      flip.seeded = true;
      flip.seed0 = in.seed0;
      flip.seed1 = in.seed1;
      flip.probability = attrs_.probability;
      flip.flipped = flipped->flat<bool>().data();
    }
    gpu::KeypointSpec kp;
    kp.type =
        std::is_same<K, float>::value ? gpu::KeypointType::kFloat : gpu::KeypointType::kDouble;
    kp.in = keypoints.flat<K>().data();
    kp.out = out_keypoints->flat<K>().data();
    kp.num_points = in.num_points;
    kp.partner = in.partner.data();
    kp.x_offset = FlipXOffset(attrs_, in.shape, kPixels);

    auto job = std::make_unique<gpu::ImageJob<In, Out>>();
    OP_REQUIRES_OK(ctx, JobStatus(gpu::make_image_job(
                            images.flat<In>().data(), out_images->flat<Out>().data(), in.shape,
                            kPixels == Pixels::kFlipNormalize ? &attrs_.normalize : nullptr, flip,
                            kp, /*force_scalar=*/false, job.get())));
    OP_REQUIRES_OK(ctx, LaunchStatus(gpu::launch_image_job(*job, stream), name().c_str()));
  }

 private:
  FlipAttrs attrs_;
};

// ------------------------------------------------------------------ registrations

#define FKD_REGISTER_RMSE(T)                                                                    \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmse").Device(DEVICE_GPU).TypeConstraint<T>("T"),     \
                          MaskedRmseGpuOp<T>);                                                  \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmseGrad").Device(DEVICE_GPU).TypeConstraint<T>("T"), \
                          MaskedRmseGradGpuOp<T>);
FKD_REGISTER_RMSE(float)
FKD_REGISTER_RMSE(double)
#undef FKD_REGISTER_RMSE

#define FKD_REGISTER_NORMALIZE(In, Out)                     \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImages")       \
                              .Device(DEVICE_GPU)           \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          NormalizeImagesGpuOp<In, Out>);
#define FKD_REGISTER_NORMALIZE_GRAD(In, Out)                \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImagesGrad")   \
                              .Device(DEVICE_GPU)           \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          NormalizeImagesGradGpuOp<In, Out>);
FKD_REGISTER_NORMALIZE(uint8_t, float)
FKD_REGISTER_NORMALIZE(uint8_t, double)
FKD_REGISTER_NORMALIZE(float, float)
FKD_REGISTER_NORMALIZE(float, double)
FKD_REGISTER_NORMALIZE(double, float)
FKD_REGISTER_NORMALIZE(double, double)
FKD_REGISTER_NORMALIZE_GRAD(float, float)
FKD_REGISTER_NORMALIZE_GRAD(float, double)
FKD_REGISTER_NORMALIZE_GRAD(double, float)
FKD_REGISTER_NORMALIZE_GRAD(double, double)
#undef FKD_REGISTER_NORMALIZE
#undef FKD_REGISTER_NORMALIZE_GRAD

#define FKD_REGISTER_FLIP(T, K)                                                                    \
  REGISTER_KERNEL_BUILDER(                                                                         \
      Name("Fkd>FlipHorizontal").Device(DEVICE_GPU).TypeConstraint<T>("T").TypeConstraint<K>("K"), \
      (FlipGpuOp<T, T, K, Pixels::kFlip, Decisions::kGiven>));                                     \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipHorizontal")                                         \
                              .Device(DEVICE_GPU)                                                  \
                              .TypeConstraint<T>("T")                                              \
                              .TypeConstraint<K>("K")                                              \
                              .HostMemory("seed"),                                                 \
                          (FlipGpuOp<T, T, K, Pixels::kFlip, Decisions::kSeeded>));
#define FKD_REGISTER_FLIP_GRAD(T, K)                     \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipHorizontalGrad") \
                              .Device(DEVICE_GPU)        \
                              .TypeConstraint<T>("T")    \
                              .TypeConstraint<K>("K"),   \
                          (FlipGpuOp<T, T, K, Pixels::kFlipGrad, Decisions::kGiven>));
#define FKD_REGISTER_FLIP_NORMALIZE(In, Out, K)                                                \
  REGISTER_KERNEL_BUILDER(Name("Fkd>FlipNormalize")                                            \
                              .Device(DEVICE_GPU)                                              \
                              .TypeConstraint<In>("Tin")                                       \
                              .TypeConstraint<Out>("Tout")                                     \
                              .TypeConstraint<K>("K"),                                         \
                          (FlipGpuOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kGiven>)); \
  REGISTER_KERNEL_BUILDER(Name("Fkd>RandomFlipNormalize")                                      \
                              .Device(DEVICE_GPU)                                              \
                              .TypeConstraint<In>("Tin")                                       \
                              .TypeConstraint<Out>("Tout")                                     \
                              .TypeConstraint<K>("K")                                          \
                              .HostMemory("seed"),                                             \
                          (FlipGpuOp<In, Out, K, Pixels::kFlipNormalize, Decisions::kSeeded>));
#define FKD_REGISTER_FLIP_K(K)                    \
  FKD_REGISTER_FLIP(uint8_t, K)                   \
  FKD_REGISTER_FLIP(float, K)                     \
  FKD_REGISTER_FLIP(double, K)                    \
  FKD_REGISTER_FLIP_GRAD(float, K)                \
  FKD_REGISTER_FLIP_GRAD(double, K)               \
  FKD_REGISTER_FLIP_NORMALIZE(uint8_t, float, K)  \
  FKD_REGISTER_FLIP_NORMALIZE(uint8_t, double, K) \
  FKD_REGISTER_FLIP_NORMALIZE(float, float, K)    \
  FKD_REGISTER_FLIP_NORMALIZE(float, double, K)   \
  FKD_REGISTER_FLIP_NORMALIZE(double, float, K)   \
  FKD_REGISTER_FLIP_NORMALIZE(double, double, K)
FKD_REGISTER_FLIP_K(float)
FKD_REGISTER_FLIP_K(double)

}  // namespace
}  // namespace tf_face
}  // namespace fkd
