// The GPU kernels' bodies run on the CPU: each block of the launch in turn, each
// block's threads one after another (HostBlock), with the launch geometry the
// CUDA launchers use. The tests compare this with the CPU kernels on every
// machine, so the GPU path's indexing and math are checked even without a GPU.
#include "kernels/gpu_launch.h"

namespace fkd {
namespace gpu {
namespace {

// A block's threads run one after another on the CPU: the same body, the same
// geometry, sums in thread order (the Block interface of gpu_common.h).
struct HostBlock {
  int threads;

  int size() const { return threads; }

  template <typename Fn>
  void each(Fn&& fn) const {
    for (int t = 0; t < threads; ++t) fn(t);
  }

  template <typename Fn>
  auto sum(Fn&& fn) const -> decltype(fn(0)) {
    decltype(fn(0)) total{};
    for (int t = 0; t < threads; ++t) total = total + fn(t);
    return total;
  }
};

}  // namespace

template <typename T>
void emulate_masked_rmse(const MaskedRmseJob<T>& job) {
  const HostBlock blk{kMaskedRmseThreads};
  for (int64_t b = 0; b < job.num_blocks; ++b) run_masked_rmse_partials(job, b, blk);
  if (job.num_blocks > 1) run_masked_rmse_finish(job, blk);
}

template <typename T>
void emulate_masked_rmse_grad(const MaskedRmseGradJob<T>& job) {
  const HostBlock blk{kMaskedRmseThreads};
  const int64_t blocks = masked_rmse_grad_gpu_blocks(job.n);
  for (int64_t b = 0; b < blocks; ++b) run_masked_rmse_grad_block(job, b, blk);
}

template <typename In, typename Out>
void emulate_image_job(const ImageJob<In, Out>& job) {
  const HostBlock blk{image_job_threads(job)};
  for (int64_t b = 0; b < job.batch; ++b) run_image_block(job, b, blk);
}

template <typename In, typename Out>
void emulate_normalize_grad_job(const NormalizeGradJob<In, Out>& job) {
  const HostBlock blk{normalize_grad_job_threads(job)};
  for (int64_t b = 0; b < job.batch; ++b) {
    if (job.standardize) {
      run_normalize_grad_block<true>(job, b, blk);
    } else {
      run_normalize_grad_block<false>(job, b, blk);
    }
  }
}

void emulate_decisions_job(const DecisionsJob& job) {
  const HostBlock blk{kDecisionThreads};
  const int64_t blocks = decisions_blocks(job.batch);
  for (int64_t b = 0; b < blocks; ++b) run_decisions_block(job, b, blk);
}

template void emulate_masked_rmse<float>(const MaskedRmseJob<float>&);
template void emulate_masked_rmse<double>(const MaskedRmseJob<double>&);
template void emulate_masked_rmse_grad<float>(const MaskedRmseGradJob<float>&);
template void emulate_masked_rmse_grad<double>(const MaskedRmseGradJob<double>&);

#define FKD_INSTANTIATE_IMAGE(In, Out) \
  template void emulate_image_job<In, Out>(const ImageJob<In, Out>&);
FKD_INSTANTIATE_IMAGE(uint8_t, uint8_t)
FKD_INSTANTIATE_IMAGE(uint8_t, float)
FKD_INSTANTIATE_IMAGE(uint8_t, double)
FKD_INSTANTIATE_IMAGE(float, float)
FKD_INSTANTIATE_IMAGE(float, double)
FKD_INSTANTIATE_IMAGE(double, float)
FKD_INSTANTIATE_IMAGE(double, double)
#undef FKD_INSTANTIATE_IMAGE

#define FKD_INSTANTIATE_GRAD(In, Out) \
  template void emulate_normalize_grad_job<In, Out>(const NormalizeGradJob<In, Out>&);
FKD_INSTANTIATE_GRAD(float, float)
FKD_INSTANTIATE_GRAD(float, double)
FKD_INSTANTIATE_GRAD(double, float)
FKD_INSTANTIATE_GRAD(double, double)
#undef FKD_INSTANTIATE_GRAD

}  // namespace gpu
}  // namespace fkd
