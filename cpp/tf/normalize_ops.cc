// TensorFlow face of image normalization: op registrations, shape functions and
// CPU kernels. The math lives in kernels/normalize.h.
#include <vector>

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

template <typename In, typename Out>
class NormalizeImagesOp : public OpKernel {
 public:
  explicit NormalizeImagesOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& images = ctx->input(0);
    ImageShape shape;
    OP_REQUIRES_OK(ctx, ImageShapeOf(images, "images", &shape));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
    if (shape.size() == 0) return;
    const In* x = images.flat<In>().data();
    Out* y = out->flat<Out>().data();
    std::vector<ImageAffine> per_image(shape.batch);
    ComputeAffineParams(ctx, x, shape, params_, per_image.data());
    ParallelForMemoryBound(ctx, shape.rows(), shape.row_size() * (sizeof(In) + sizeof(Out)),
                           [&](int64_t b, int64_t e) {
                             normalize_rows(x, y, shape, per_image.data(), /*flip=*/nullptr, b, e);
                           });
  }

 private:
  NormalizeParams params_;
};

template <typename In, typename Out>
class NormalizeImagesGradOp : public OpKernel {
 public:
  explicit NormalizeImagesGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, NormalizeParamsFromAttrs(ctx, &params_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad = ctx->input(0);
    const Tensor& images = ctx->input(1);
    ImageShape shape;
    OP_REQUIRES_OK(ctx, ValidateNormalizeGrad(grad, images, &shape));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images.shape(), &out));
    const Out* g = grad.flat<Out>().data();
    const In* x = images.flat<In>().data();
    In* dx = out->flat<In>().data();
    ParallelFor(ctx, shape.batch, 6 * shape.image_size(),
                [&](int64_t b, int64_t e) { normalize_grad(g, x, shape, params_, b, e, dx); });
  }

 private:
  NormalizeParams params_;
};

#define FKD_REGISTER_FORWARD(In, Out)                       \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImages")       \
                              .Device(DEVICE_CPU)           \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          NormalizeImagesOp<In, Out>);
#define FKD_REGISTER_GRAD(In, Out)                          \
  REGISTER_KERNEL_BUILDER(Name("Fkd>NormalizeImagesGrad")   \
                              .Device(DEVICE_CPU)           \
                              .TypeConstraint<In>("Tin")    \
                              .TypeConstraint<Out>("Tout"), \
                          NormalizeImagesGradOp<In, Out>);
FKD_REGISTER_FORWARD(uint8_t, float)
FKD_REGISTER_FORWARD(uint8_t, double)
FKD_REGISTER_FORWARD(float, float)
FKD_REGISTER_FORWARD(float, double)
FKD_REGISTER_FORWARD(double, float)
FKD_REGISTER_FORWARD(double, double)
FKD_REGISTER_GRAD(float, float)
FKD_REGISTER_GRAD(float, double)
FKD_REGISTER_GRAD(double, float)
FKD_REGISTER_GRAD(double, double)
#undef FKD_REGISTER_FORWARD
#undef FKD_REGISTER_GRAD

}  // namespace
}  // namespace tf_face
}  // namespace fkd
