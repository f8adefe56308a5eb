// CUDA kernels and launchers of the image ops: thin shells over the bodies in
// image_gpu.h (the host emulation runs the same bodies), one block per image.
// Included by the .cu files that instantiate them, split so a parallel build
// compiles them side by side.
#pragma once

#include "kernels/gpu_device.cuh"
#include "kernels/image_gpu.h"

namespace fkd {
namespace gpu {

// __grid_constant__: the job (with its keypoint partner table) is read in place
// from the kernel's parameters, indexed at run time, never copied per thread.
template <typename In, typename Out>
__global__ void __launch_bounds__(1024)
    image_kernel(const __grid_constant__ ImageJob<In, Out> job) {
  run_image_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}

template <typename In, typename Out>
GpuStatus launch_image_job(const ImageJob<In, Out>& job, GpuStream stream) {
  if (job.batch == 0) return GpuStatus{};
  image_kernel<In, Out>
      <<<static_cast<unsigned>(job.batch), image_job_threads(job), 0, stream>>>(job);
  return last_launch_status();
}

template <bool kStandardize, typename In, typename Out>
__global__ void __launch_bounds__(1024)
    normalize_grad_kernel(const __grid_constant__ NormalizeGradJob<In, Out> job) {
  run_normalize_grad_block<kStandardize>(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}

template <typename In, typename Out>
GpuStatus launch_normalize_grad_job(const NormalizeGradJob<In, Out>& job, GpuStream stream) {
  if (job.batch == 0) return GpuStatus{};
  const unsigned blocks = static_cast<unsigned>(job.batch);
  const int threads = normalize_grad_job_threads(job);
  if (job.standardize) {
    normalize_grad_kernel<true, In, Out><<<blocks, threads, 0, stream>>>(job);
  } else {
    normalize_grad_kernel<false, In, Out><<<blocks, threads, 0, stream>>>(job);
  }
  return last_launch_status();
}

}  // namespace gpu
}  // namespace fkd
