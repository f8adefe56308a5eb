#include "kernels/masked_rmse.h"

namespace fkd {

template <typename T>
void masked_rmse_blocks(const T* FKD_RESTRICT predictions, const T* FKD_RESTRICT targets,
                        int64_t n, int64_t block_begin, int64_t block_end,
                        double* block_sum_sq, int64_t* block_count) {
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t begin = b * kMaskedRmseBlock;
    const int64_t end = begin + kMaskedRmseBlock < n ? begin + kMaskedRmseBlock : n;
    // Double accumulators: float32 sums of thousands of squares would lose digits.
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      masked_rmse_accumulate(predictions[i], targets[i], &sum, &count);
    }
    block_sum_sq[b] = sum;
    block_count[b] = count;
  }
}

MaskedRmseTotals masked_rmse_combine(const double* block_sum_sq, const int64_t* block_count,
                                     int64_t num_blocks, bool squared) {
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t b = 0; b < num_blocks; ++b) {
    sum += block_sum_sq[b];
    count += block_count[b];
  }
  return masked_rmse_finish(sum, static_cast<double>(count), squared);
}

template <typename T>
void masked_rmse_grad(const T* FKD_RESTRICT predictions, const T* FKD_RESTRICT targets,
                      T coefficient, int64_t begin, int64_t end,
                      T* FKD_RESTRICT grad_predictions, T* FKD_RESTRICT grad_targets) {
  if (grad_predictions) {
    for (int64_t i = begin; i < end; ++i) {
      grad_predictions[i] = masked_rmse_grad_value(predictions[i], targets[i], coefficient);
    }
  }
  if (grad_targets) {
    const T negated = -coefficient;
    for (int64_t i = begin; i < end; ++i) {
      grad_targets[i] = masked_rmse_grad_value(predictions[i], targets[i], negated);
    }
  }
}

#define FKD_INSTANTIATE(T)                                                              \
  template void masked_rmse_blocks<T>(const T*, const T*, int64_t, int64_t, int64_t,      \
                                      double*, int64_t*);                                \
  template void masked_rmse_grad<T>(const T*, const T*, T, int64_t, int64_t, T*, T*);
FKD_INSTANTIATE(float)
FKD_INSTANTIATE(double)
#undef FKD_INSTANTIATE

}  // namespace fkd
