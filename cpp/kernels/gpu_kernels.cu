// Every CUDA kernel of fkd_ops, as thin shells over the block bodies that the
// host emulation also runs (masked_rmse_gpu.h, image_gpu.h).
//
// This file is compiled by NVRTC (CUDA 12, from PyPI's nvidia-cuda-nvrtc-cu12)
// at build time, once per GPU architecture, by cpp/cmake/compile_gpu_kernels.py;
// the cubins and PTX are embedded in the libraries and launched through the
// CUDA driver API by gpu_launch.cc, which finds each kernel by its extern "C"
// name (the lists in gpu_kernel_names.h). NVRTC has no C++ standard library:
// nothing here or in the headers it includes may include one.
#include "kernels/gpu_device.cuh"
#include "kernels/gpu_kernel_names.h"
#include "kernels/image_gpu.h"
#include "kernels/masked_rmse_gpu.h"

// The jobs' layout as NVRTC sees it; the build reads it from the PTX.
extern "C" __device__ const unsigned long long fkd_job_layout[] = FKD_GPU_JOB_LAYOUT;

// __grid_constant__ (compute capability 7.0 and newer): a job, with its keypoint
// partner table, is read in place from the kernel's parameters when indexed at
// run time, never copied per thread.
#if __CUDA_ARCH__ >= 700
#define FKD_GRID_CONSTANT __grid_constant__
#else
#define FKD_GRID_CONSTANT
#endif

using fkd::gpu::DeviceBlock;

#define FKD_MASKED_RMSE_KERNELS(T, tag)                                                         \
  extern "C" __global__ void __launch_bounds__(fkd::gpu::kMaskedRmseThreads)                    \
      fkd_masked_rmse_partials_##tag(const fkd::gpu::MaskedRmseJob<T> job) {                    \
    fkd::gpu::run_masked_rmse_partials(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});   \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(fkd::gpu::kMaskedRmseThreads)                    \
      fkd_masked_rmse_finish_##tag(const fkd::gpu::MaskedRmseJob<T> job) {                      \
    fkd::gpu::run_masked_rmse_finish(job, DeviceBlock{});                                       \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(fkd::gpu::kMaskedRmseThreads)                    \
      fkd_masked_rmse_grad_##tag(const fkd::gpu::MaskedRmseGradJob<T> job) {                    \
    fkd::gpu::run_masked_rmse_grad_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{}); \
  }
FKD_GPU_FLOAT_TYPES(FKD_MASKED_RMSE_KERNELS)

#define FKD_IMAGE_KERNEL(In, Out, in_tag, out_tag)                                              \
  extern "C" __global__ void __launch_bounds__(1024)                                            \
      fkd_image_##in_tag##_##out_tag(const FKD_GRID_CONSTANT fkd::gpu::ImageJob<In, Out> job) { \
    fkd::gpu::run_image_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});            \
  }
FKD_GPU_IMAGE_TYPES(FKD_IMAGE_KERNEL)

// One kernel per mode family, so the element-wise modes (scale, affine) carry
// none of standardize's registers.
#define FKD_NORMALIZE_GRAD_KERNELS(In, Out, in_tag, out_tag)                         \
  extern "C" __global__ void __launch_bounds__(1024)                                 \
      fkd_normalize_grad_standardize_##in_tag##_##out_tag(                           \
          const FKD_GRID_CONSTANT fkd::gpu::NormalizeGradJob<In, Out> job) {         \
    fkd::gpu::run_normalize_grad_block<true>(job, static_cast<int64_t>(blockIdx.x),  \
                                             DeviceBlock{});                         \
  }                                                                                  \
  extern "C" __global__ void __launch_bounds__(1024)                                 \
      fkd_normalize_grad_affine_##in_tag##_##out_tag(                                \
          const FKD_GRID_CONSTANT fkd::gpu::NormalizeGradJob<In, Out> job) {         \
    fkd::gpu::run_normalize_grad_block<false>(job, static_cast<int64_t>(blockIdx.x), \
                                              DeviceBlock{});                        \
  }
FKD_GPU_GRAD_TYPES(FKD_NORMALIZE_GRAD_KERNELS)

extern "C" __global__ void __launch_bounds__(fkd::gpu::kDecisionThreads)
    fkd_flip_decisions(const fkd::gpu::DecisionsJob job) {
  fkd::gpu::run_decisions_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}
