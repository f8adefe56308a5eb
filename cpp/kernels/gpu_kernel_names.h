// The kernels' extern "C" names and the jobs' layouts, as lists that both the
// device code (gpu_kernels.cu, compiled by NVRTC) and the host launcher
// (gpu_launch.cc) expand, so a name or a layout cannot differ between them.
#pragma once

#include "kernels/image_gpu.h"
#include "kernels/masked_rmse_gpu.h"
#include "kernels/portability.h"

// X(T, tag): the masked RMSE kernels fkd_masked_rmse_{partials,finish,grad}_<tag>.
#define FKD_GPU_FLOAT_TYPES(X) \
  X(float, f32)                \
  X(double, f64)

// X(In, Out, in_tag, out_tag): the image kernels fkd_image_<in_tag>_<out_tag>.
#define FKD_GPU_IMAGE_TYPES(X) \
  X(uint8_t, uint8_t, u8, u8)  \
  X(uint8_t, float, u8, f32)   \
  X(uint8_t, double, u8, f64)  \
  X(float, float, f32, f32)    \
  X(float, double, f32, f64)   \
  X(double, float, f64, f32)   \
  X(double, double, f64, f64)

// X(In, Out, in_tag, out_tag): the normalization gradient kernels
// fkd_normalize_grad_{standardize,affine}_<in_tag>_<out_tag> (affine serves
// scale too).
#define FKD_GPU_GRAD_TYPES(X) \
  X(float, float, f32, f32)   \
  X(float, double, f32, f64)  \
  X(double, float, f64, f32)  \
  X(double, double, f64, f64)

namespace fkd {
namespace gpu {

// A job crosses from the host compiler to NVRTC as raw parameter bytes. Both
// compute this list; the build reads NVRTC's from the PTX (fkd_job_layout) and
// gpu_launch.cc checks it against the host compiler's at compile time.
template <typename Job>
struct JobLayout {
  static constexpr unsigned long long size = sizeof(Job);
  static constexpr unsigned long long align = alignof(Job);
};

}  // namespace gpu
}  // namespace fkd

#define FKD_GPU_JOB_LAYOUT_ONE(...) \
  fkd::gpu::JobLayout<__VA_ARGS__>::size, fkd::gpu::JobLayout<__VA_ARGS__>::align,
#define FKD_GPU_JOB_LAYOUT_FLOAT(T, tag)             \
  FKD_GPU_JOB_LAYOUT_ONE(fkd::gpu::MaskedRmseJob<T>) \
  FKD_GPU_JOB_LAYOUT_ONE(fkd::gpu::MaskedRmseGradJob<T>)
#define FKD_GPU_JOB_LAYOUT_IMAGE(In, Out, in_tag, out_tag) \
  FKD_GPU_JOB_LAYOUT_ONE(fkd::gpu::ImageJob<In, Out>)
#define FKD_GPU_JOB_LAYOUT_GRAD(In, Out, in_tag, out_tag) \
  FKD_GPU_JOB_LAYOUT_ONE(fkd::gpu::NormalizeGradJob<In, Out>)

// The whole list, as the initializer of an array of unsigned long long.
#define FKD_GPU_JOB_LAYOUT                                                                     \
  {FKD_GPU_FLOAT_TYPES(FKD_GPU_JOB_LAYOUT_FLOAT) FKD_GPU_IMAGE_TYPES(FKD_GPU_JOB_LAYOUT_IMAGE) \
       FKD_GPU_GRAD_TYPES(FKD_GPU_JOB_LAYOUT_GRAD) FKD_GPU_JOB_LAYOUT_ONE(fkd::gpu::DecisionsJob)}
