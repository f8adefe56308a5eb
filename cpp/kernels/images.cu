// The image kernel for uint8 input (plain flip and normalization), and the
// seeded flip decisions.
#include "kernels/image_kernels.cuh"

namespace fkd {
namespace gpu {
namespace {

__global__ void __launch_bounds__(kDecisionThreads) decisions_kernel(const DecisionsJob job) {
  run_decisions_block(job, static_cast<int64_t>(blockIdx.x), DeviceBlock{});
}

}  // namespace

GpuStatus launch_decisions_job(const DecisionsJob& job, GpuStream stream) {
  const int64_t blocks = decisions_blocks(job.batch);
  if (blocks == 0) return GpuStatus{};
  if (blocks > 0x7fffffff) return GpuStatus{static_cast<int>(cudaErrorInvalidConfiguration)};
  decisions_kernel<<<static_cast<unsigned>(blocks), kDecisionThreads, 0, stream>>>(job);
  return last_launch_status();
}

template GpuStatus launch_image_job<uint8_t, uint8_t>(const ImageJob<uint8_t, uint8_t>&, GpuStream);
template GpuStatus launch_image_job<uint8_t, float>(const ImageJob<uint8_t, float>&, GpuStream);
template GpuStatus launch_image_job<uint8_t, double>(const ImageJob<uint8_t, double>&, GpuStream);

}  // namespace gpu
}  // namespace fkd
