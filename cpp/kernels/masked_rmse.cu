// CUDA kernels of the masked RMSE: thin shells over the bodies in
// masked_rmse_gpu.h (the host emulation runs the same bodies).
#include "kernels/gpu_device.cuh"
#include "kernels/masked_rmse_gpu.h"

namespace fkd {
namespace gpu {
namespace {

template <typename T>
__global__ void __launch_bounds__(kMaskedRmseThreads)
    masked_rmse_partials_kernel(const MaskedRmseJob<T> job) {
  run_masked_rmse_partials(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}

template <typename T>
__global__ void __launch_bounds__(kMaskedRmseThreads)
    masked_rmse_finish_kernel(const MaskedRmseJob<T> job) {
  run_masked_rmse_finish(job, DeviceBlock{});
}

template <typename T>
__global__ void __launch_bounds__(kMaskedRmseThreads)
    masked_rmse_grad_kernel(const MaskedRmseGradJob<T> job) {
  run_masked_rmse_grad_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}

constexpr int64_t kMaxGrid = 0x7fffffff;

}  // namespace

template <typename T>
GpuStatus launch_masked_rmse(const MaskedRmseJob<T>& job, GpuStream stream) {
  if (job.num_blocks > kMaxGrid) return GpuStatus{static_cast<int>(cudaErrorInvalidConfiguration)};
  masked_rmse_partials_kernel<T>
      <<<static_cast<unsigned>(job.num_blocks), kMaskedRmseThreads, 0, stream>>>(job);
  GpuStatus status = last_launch_status();
  if (!status.ok() || job.num_blocks == 1) return status;
  masked_rmse_finish_kernel<T><<<1, kMaskedRmseThreads, 0, stream>>>(job);
  return last_launch_status();
}

template <typename T>
GpuStatus launch_masked_rmse_grad(const MaskedRmseGradJob<T>& job, GpuStream stream) {
  const int64_t blocks = masked_rmse_grad_gpu_blocks(job.n);
  if (blocks == 0) return GpuStatus{};
  if (blocks > kMaxGrid) return GpuStatus{static_cast<int>(cudaErrorInvalidConfiguration)};
  masked_rmse_grad_kernel<T><<<static_cast<unsigned>(blocks), kMaskedRmseThreads, 0, stream>>>(job);
  return last_launch_status();
}

template GpuStatus launch_masked_rmse<float>(const MaskedRmseJob<float>&, GpuStream);
template GpuStatus launch_masked_rmse<double>(const MaskedRmseJob<double>&, GpuStream);
template GpuStatus launch_masked_rmse_grad<float>(const MaskedRmseGradJob<float>&, GpuStream);
template GpuStatus launch_masked_rmse_grad<double>(const MaskedRmseGradJob<double>&, GpuStream);

}  // namespace gpu
}  // namespace fkd
