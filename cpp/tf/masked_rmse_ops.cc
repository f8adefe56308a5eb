// TensorFlow face of the masked RMSE loss: the ops, their shape functions, one
// OpKernel<Device, T> per op calling a functor specialised for the CPU
// (kernels/masked_rmse.h, on TF's thread pool) and the GPU (kernels/gpu_launch.h,
// on the op's stream), and one registration list for both devices.
#include <vector>

#include "kernels/gpu_launch.h"
#include "kernels/masked_rmse.h"
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

absl::Status SamePredictionTargetShapes(InferenceContext* c) {
  auto p = c->input(0);
  auto t = c->input(1);
  if (c->RankKnown(p) && c->Rank(p) < 1) {
    return InvalidArg("predictions must have rank >= 1, got shape ", c->DebugString(p));
  }
  if (c->RankKnown(t) && c->Rank(t) < 1) {
    return InvalidArg("targets must have rank >= 1, got shape ", c->DebugString(t));
  }
  tf::shape_inference::ShapeHandle merged;
  if (!c->Merge(p, t, &merged).ok()) {
    return InvalidArg("predictions and targets must have the same shape, got predictions ",
                      c->DebugString(p), " and targets ", c->DebugString(t));
  }
  return absl::OkStatus();
}

REGISTER_OP("Fkd>MaskedRmse")
    .Input("predictions: T")
    .Input("targets: T")
    .Output("loss: T")
    .Output("sum_sq: T")
    .Output("count: T")
    .Attr("T: {float, double}")
    .Attr("squared: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(SamePredictionTargetShapes(c));
      for (int i = 0; i < 3; ++i) c->set_output(i, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
Root mean squared error over the elements whose target is not NaN.

loss = sqrt(sum_sq / count) (sum_sq / count when squared), 0 when count is 0.
sum_sq and count are returned so batches and replicas can be combined exactly.
)doc");

REGISTER_OP("Fkd>MaskedRmseGrad")
    .Input("predictions: T")
    .Input("targets: T")
    .Input("sum_sq: T")
    .Input("count: T")
    .Input("grad_loss: T")
    .Input("grad_sum_sq: T")
    .Output("grad_predictions: T")
    .Output("grad_targets: T")
    .Attr("T: {float, double}")
    .Attr("squared: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(SamePredictionTargetShapes(c));
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      return absl::OkStatus();
    });

// ------------------------------------------------------------------ functors

// Writes loss, sum_sq and count (scalars in the device's memory).
template <typename Device, typename T>
struct MaskedRmseFunctor;

template <typename T>
struct MaskedRmseFunctor<CpuDevice, T> {
  absl::Status operator()(OpKernelContext* ctx, const T* p, const T* t, int64_t n, bool squared,
                          T* loss, T* sum_sq, T* count) {
    const int64_t blocks = masked_rmse_num_blocks(n);
    std::vector<double> sums(blocks);
    std::vector<int64_t> counts(blocks);
    // Both passes are memory-bound (vectorized, ~1 cycle per element).
    const int64_t block_bytes = 2 * sizeof(T) * kMaskedRmseBlock;
    ParallelForMemoryBound(ctx, blocks, block_bytes, [&](int64_t b, int64_t e) {
      masked_rmse_blocks(p, t, n, b, e, sums.data(), counts.data());
    });
    const MaskedRmseTotals totals =
        masked_rmse_combine(sums.data(), counts.data(), blocks, squared);
    *loss = static_cast<T>(totals.loss);
    *sum_sq = static_cast<T>(totals.sum_sq);
    *count = static_cast<T>(totals.count);
    return absl::OkStatus();
  }
};

template <typename T>
struct MaskedRmseFunctor<GpuDevice, T> {
  absl::Status operator()(OpKernelContext* ctx, const T* p, const T* t, int64_t n, bool squared,
                          T* loss, T* sum_sq, T* count) {
    GpuStream stream;
    TF_RETURN_IF_ERROR(GpuStreamOf(ctx, &stream));
    const int64_t workspace_bytes = gpu::masked_rmse_gpu_workspace_bytes(n);
    Tensor workspace;
    if (workspace_bytes > 0) {
      TF_RETURN_IF_ERROR(
          ctx->allocate_temp(tf::DT_INT8, TensorShape({workspace_bytes}), &workspace));
    }
    gpu::MaskedRmseJob<T> job;
    TF_RETURN_IF_ERROR(JobStatus(gpu::make_masked_rmse_job(
        p, t, n, squared, loss, sum_sq, count,
        workspace_bytes > 0 ? workspace.flat<int8_t>().data() : nullptr, workspace_bytes, &job)));
    return LaunchStatus(gpu::launch_masked_rmse(job, stream), "MaskedRmse");
  }
};

// Writes the gradients that are not null. The four scalars (sum_sq, count and
// the upstream gradients) are tensors in the device's memory.
template <typename Device, typename T>
struct MaskedRmseGradFunctor;

template <typename T>
struct MaskedRmseGradFunctor<CpuDevice, T> {
  absl::Status operator()(OpKernelContext* ctx, const T* p, const T* t, int64_t n,
                          const Tensor* scalars[4], bool squared, T* gp, T* gt) {
    double s[4];
    for (int i = 0; i < 4; ++i) s[i] = static_cast<double>(scalars[i]->scalar<T>()());
    const T coefficient =
        static_cast<T>(masked_rmse_grad_coefficient(s[0], s[1], s[2], s[3], squared));
    const int64_t bytes = (2 + (gp != nullptr) + (gt != nullptr)) * sizeof(T);
    ParallelForMemoryBound(ctx, n, bytes, [&](int64_t b, int64_t e) {
      masked_rmse_grad(p, t, coefficient, b, e, gp, gt);
    });
    return absl::OkStatus();
  }
};

template <typename T>
struct MaskedRmseGradFunctor<GpuDevice, T> {
  absl::Status operator()(OpKernelContext* ctx, const T* p, const T* t, int64_t n,
                          const Tensor* scalars[4], bool squared, T* gp, T* gt) {
    GpuStream stream;
    TF_RETURN_IF_ERROR(GpuStreamOf(ctx, &stream));
    // The scalars stay in device memory: the kernel reads them itself, so
    // nothing waits for the forward pass to finish.
    const T* s[4];
    for (int i = 0; i < 4; ++i) s[i] = scalars[i]->flat<T>().data();
    gpu::MaskedRmseGradJob<T> job;
    TF_RETURN_IF_ERROR(JobStatus(
        gpu::make_masked_rmse_grad_job(p, t, n, s[0], s[1], s[2], s[3], squared, gp, gt, &job)));
    return LaunchStatus(gpu::launch_masked_rmse_grad(job, stream), "MaskedRmseGrad");
  }
};

// ------------------------------------------------------------------ kernels

template <typename Device, typename T>
class MaskedRmseOp : public OpKernel {
 public:
  explicit MaskedRmseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    GuardedCompute(ctx, [&] {
      const Tensor& predictions = ctx->input(0);
      const Tensor& targets = ctx->input(1);
      OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
      Tensor* out[3];
      for (int i = 0; i < 3; ++i) {
        OP_REQUIRES_OK(ctx, ctx->allocate_output(i, TensorShape({}), &out[i]));
      }
      OP_REQUIRES_OK(ctx, MaskedRmseFunctor<Device, T>()(
                              ctx, predictions.flat<T>().data(), targets.flat<T>().data(),
                              predictions.NumElements(), squared_, out[0]->flat<T>().data(),
                              out[1]->flat<T>().data(), out[2]->flat<T>().data()));
    });
  }

 private:
  bool squared_ = false;
};

template <typename Device, typename T>
class MaskedRmseGradOp : public OpKernel {
 public:
  explicit MaskedRmseGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    GuardedCompute(ctx, [&] {
      const Tensor& predictions = ctx->input(0);
      const Tensor& targets = ctx->input(1);
      OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
      OP_REQUIRES_OK(ctx, ValidateMaskedRmseGradScalars(ctx));
      // A training step wants only the predictions' gradient: in a graph the
      // executor says which outputs have consumers, and only those are computed,
      // on either device.
      T* grads[2] = {nullptr, nullptr};
      for (int i = 0; i < 2; ++i) {
        if (!ctx->output_required(i)) continue;
        Tensor* out = nullptr;
        OP_REQUIRES_OK(ctx, ctx->allocate_output(i, predictions.shape(), &out));
        grads[i] = out->flat<T>().data();
      }
      if (grads[0] == nullptr && grads[1] == nullptr) return;
      const Tensor* scalars[4];
      for (int i = 0; i < 4; ++i) scalars[i] = &ctx->input(2 + i);
      OP_REQUIRES_OK(ctx, MaskedRmseGradFunctor<Device, T>()(
                              ctx, predictions.flat<T>().data(), targets.flat<T>().data(),
                              predictions.NumElements(), scalars, squared_, grads[0], grads[1]));
    });
  }

 private:
  bool squared_ = false;
};

// ------------------------------------------------------------------ registrations

#define FKD_REGISTER(DEVICE, Dev, T)                                                        \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmse").Device(DEVICE).TypeConstraint<T>("T"),     \
                          (MaskedRmseOp<Dev, T>));                                          \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmseGrad").Device(DEVICE).TypeConstraint<T>("T"), \
                          (MaskedRmseGradOp<Dev, T>));
#define FKD_REGISTER_ALL(DEVICE, Dev) \
  FKD_REGISTER(DEVICE, Dev, float)    \
  FKD_REGISTER(DEVICE, Dev, double)
FKD_REGISTER_ALL(DEVICE_CPU, CpuDevice)
#if defined(FKD_OPS_WITH_GPU)
FKD_REGISTER_ALL(DEVICE_GPU, GpuDevice)
#endif
#undef FKD_REGISTER
#undef FKD_REGISTER_ALL

}  // namespace
}  // namespace tf_face
}  // namespace fkd
