// Masked RMSE over keypoints: an element is present when its target is not NaN.
//
//   sum_sq = sum over present of (p - t)^2,  count = number present,
//   loss   = sqrt(sum_sq / count)  (or sum_sq / count when squared), 0 when count == 0.
//
// The reduction is split into fixed-size blocks whose partial sums are combined
// in block order, so the result has the same bits whatever the number of threads.
#pragma once

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstdint>
#endif

#include "kernels/portability.h"

namespace fkd {

inline constexpr int64_t kMaskedRmseBlock = 4096;

inline int64_t masked_rmse_num_blocks(int64_t n) {
  return (n + kMaskedRmseBlock - 1) / kMaskedRmseBlock;
}

#if !defined(__CUDACC_RTC__)
// Partial sums of blocks [block_begin, block_end) of n elements; writes
// block_sum_sq[b] and block_count[b] for each block b in the range.
template <typename T>
void masked_rmse_blocks(const T* predictions, const T* targets, int64_t n, int64_t block_begin,
                        int64_t block_end, double* block_sum_sq, int64_t* block_count);
#endif

// Which loop masked_rmse_blocks runs for float32 on this CPU: "avx2" or
// "portable" (FKD_OPS_NO_AVX2=1 in the environment forces the latter), so tests
// can tell that they exercised both.
const char* masked_rmse_float_path();

// Adds one element to a running (sum of squares, count): present when the
// target is not NaN; the difference is taken in double so float32 sums of
// thousands of squares keep their digits. Shared by the CPU and CUDA kernels.
template <typename T>
FKD_HOST_DEVICE inline void masked_rmse_accumulate(T prediction, T target, double* sum_sq,
                                                   int64_t* count) {
  const bool present = target == target;
  const double d = static_cast<double>(prediction) - static_cast<double>(target);
  *sum_sq += present ? d * d : 0.0;
  *count += present;
}

struct MaskedRmseTotals {
  double loss;
  double sum_sq;
  double count;
};

// Finishes the loss from totals: count == 0 gives 0, never NaN.
FKD_HOST_DEVICE inline MaskedRmseTotals masked_rmse_finish(double sum_sq, double count,
                                                           bool squared) {
  double mse = count > 0 ? sum_sq / count : 0.0;
  return {squared ? mse : (mse == 0.0 ? 0.0 : sqrt(mse)), sum_sq, count};
}

#if !defined(__CUDACC_RTC__)
// Combines block partials in block order.
MaskedRmseTotals masked_rmse_combine(const double* block_sum_sq, const int64_t* block_count,
                                     int64_t num_blocks, bool squared);
#endif

// The gradient at a present element is coefficient * (p - t) for predictions and
// its negative for targets; missing elements get 0. The coefficient folds the
// upstream gradients of loss and sum_sq (count is piecewise constant). It is 0
// when count == 0 or the loss is 0, so those cases never produce NaN.
FKD_HOST_DEVICE inline double masked_rmse_grad_coefficient(double sum_sq, double count,
                                                           double grad_loss, double grad_sum_sq,
                                                           bool squared) {
  double dloss_dsum = 0.0;
  if (count > 0) {
    if (squared) {
      dloss_dsum = 1.0 / count;
    } else if (!(sum_sq == 0.0)) {  // NaN sum_sq falls through and propagates
      dloss_dsum = 0.5 / sqrt(sum_sq * count);
    }
  }
  return 2.0 * (grad_loss * dloss_dsum + grad_sum_sq);
}

// One element of the gradient: coefficient * (p - t) where the target is
// present, else 0 (the targets' gradient uses -coefficient).
template <typename T>
FKD_HOST_DEVICE inline T masked_rmse_grad_value(T prediction, T target, T coefficient) {
  return target == target ? coefficient * (prediction - target) : T(0);
}

#if !defined(__CUDACC_RTC__)
// Elements [begin, end): grad_predictions and grad_targets (either may be null).
template <typename T>
void masked_rmse_grad(const T* predictions, const T* targets, T coefficient, int64_t begin,
                      int64_t end, T* grad_predictions, T* grad_targets);
#endif

}  // namespace fkd
