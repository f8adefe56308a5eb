// TensorFlow face of the masked RMSE loss: op registrations, shape functions and
// CPU kernels. The math lives in kernels/masked_rmse.h.
#include <vector>

#include "kernels/masked_rmse.h"
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

template <typename T>
class MaskedRmseOp : public OpKernel {
 public:
  explicit MaskedRmseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& predictions = ctx->input(0);
    const Tensor& targets = ctx->input(1);
    OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
    const int64_t n = predictions.NumElements();
    const int64_t blocks = masked_rmse_num_blocks(n);
    std::vector<double> sums(blocks);
    std::vector<int64_t> counts(blocks);
    const T* p = predictions.flat<T>().data();
    const T* t = targets.flat<T>().data();
    // Both passes are memory-bound (vectorized, ~1 cycle per element).
    const int64_t block_bytes = 2 * sizeof(T) * kMaskedRmseBlock;
    ParallelForMemoryBound(ctx, blocks, block_bytes, [&](int64_t b, int64_t e) {
      masked_rmse_blocks(p, t, n, b, e, sums.data(), counts.data());
    });
    const MaskedRmseTotals totals =
        masked_rmse_combine(sums.data(), counts.data(), blocks, squared_);
    const double values[3] = {totals.loss, totals.sum_sq, totals.count};
    for (int i = 0; i < 3; ++i) {
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, TensorShape({}), &out));
      out->scalar<T>()() = static_cast<T>(values[i]);
    }
  }

 private:
  bool squared_ = false;
};

template <typename T>
class MaskedRmseGradOp : public OpKernel {
 public:
  explicit MaskedRmseGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("squared", &squared_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& predictions = ctx->input(0);
    const Tensor& targets = ctx->input(1);
    OP_REQUIRES_OK(ctx, ValidateMaskedRmsePair(predictions, targets));
    OP_REQUIRES_OK(ctx, ValidateMaskedRmseGradScalars(ctx));
    double s[4];
    for (int i = 0; i < 4; ++i) s[i] = static_cast<double>(ctx->input(2 + i).scalar<T>()());
    const T coefficient =
        static_cast<T>(masked_rmse_grad_coefficient(s[0], s[1], s[2], s[3], squared_));
    // A training step wants only the predictions' gradient: in a graph the
    // executor says which outputs have consumers, and only those are computed.
    T* gp = nullptr;
    T* gt = nullptr;
    for (int i = 0; i < 2; ++i) {
      if (!ctx->output_required(i)) continue;
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, predictions.shape(), &out));
      (i == 0 ? gp : gt) = out->flat<T>().data();
    }
    if (gp == nullptr && gt == nullptr) return;
    const T* p = predictions.flat<T>().data();
    const T* t = targets.flat<T>().data();
    const int64_t bytes = (2 + (gp != nullptr) + (gt != nullptr)) * sizeof(T);
    ParallelForMemoryBound(ctx, predictions.NumElements(), bytes, [&](int64_t b, int64_t e) {
      masked_rmse_grad(p, t, coefficient, b, e, gp, gt);
    });
  }

 private:
  bool squared_ = false;
};

#define FKD_REGISTER(T)                                                                         \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmse").Device(DEVICE_CPU).TypeConstraint<T>("T"),     \
                          MaskedRmseOp<T>);                                                     \
  REGISTER_KERNEL_BUILDER(Name("Fkd>MaskedRmseGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
                          MaskedRmseGradOp<T>);
FKD_REGISTER(float)
FKD_REGISTER(double)
#undef FKD_REGISTER

}  // namespace
}  // namespace tf_face
}  // namespace fkd
