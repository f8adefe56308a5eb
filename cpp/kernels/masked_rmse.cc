#include "kernels/masked_rmse.h"

#include <cstring>

namespace fkd {
namespace {

// Each block is summed in kLanes interleaved partial sums (element i of the
// block goes to lane i % kLanes), combined by a fixed pairwise tree, so the
// result has the same bits on every CPU and SIMD width. Missing elements are
// masked with a compare, not a branch: a random NaN pattern costs nothing.
constexpr int kLanes = 16;

inline double combine_lanes(double* lanes) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int j = 0; j < width; ++j) lanes[j] += lanes[j + width];
  }
  return lanes[0];
}

// One element into its lane (the scalar form of the vector loop below).
template <typename T>
inline void accumulate(T p, T t, double* sum, double* count) {
  const bool present = t == t;
  const double d = present ? static_cast<double>(p) - static_cast<double>(t) : 0.0;
  *sum += d * d;
  *count += present ? 1.0 : 0.0;
}

#if defined(__GNUC__) || defined(__clang__)
// GCC/Clang vector extensions: 4 doubles per vector, lowered to whatever the
// clone's ISA has (two SSE2 registers, one AVX2 register).
typedef double F64x4 __attribute__((vector_size(32)));
typedef long long I64x4 __attribute__((vector_size(32)));
typedef float F32x4 __attribute__((vector_size(16)));

inline F64x4 load4(const float* x) {
  F32x4 v;
  std::memcpy(&v, x, sizeof(v));
  return __builtin_convertvector(v, F64x4);
}
inline F64x4 load4(const double* x) {
  F64x4 v;
  std::memcpy(&v, x, sizeof(v));
  return v;
}

// Lanes [0, 16) of `whole` elements (a multiple of 16).
template <typename T>
inline void accumulate_lanes(const T* FKD_RESTRICT p, const T* FKD_RESTRICT t, int64_t whole,
                             double* sum, double* count) {
  constexpr int kVectors = kLanes / 4;
  F64x4 s[kVectors] = {};
  I64x4 c[kVectors] = {};
  for (int64_t i = 0; i < whole; i += kLanes) {
    for (int v = 0; v < kVectors; ++v) {
      const F64x4 tv = load4(t + i + 4 * v);
      const I64x4 present = tv == tv;  // all ones where the target is a number
      const F64x4 d = load4(p + i + 4 * v) - tv;
      const F64x4 masked = reinterpret_cast<F64x4>(reinterpret_cast<I64x4>(d) & present);
      s[v] += masked * masked;
      c[v] -= present;  // -(-1) per present element
    }
  }
  for (int v = 0; v < kVectors; ++v) {
    for (int j = 0; j < 4; ++j) {
      sum[4 * v + j] = s[v][j];
      count[4 * v + j] = static_cast<double>(c[v][j]);
    }
  }
}
#else
template <typename T>
inline void accumulate_lanes(const T* FKD_RESTRICT p, const T* FKD_RESTRICT t, int64_t whole,
                             double* sum, double* count) {
  for (int64_t i = 0; i < whole; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) accumulate(p[i + j], t[i + j], &sum[j], &count[j]);
  }
}
#endif

}  // namespace

template <typename T>
FKD_VECTOR_CLONES void masked_rmse_blocks(const T* FKD_RESTRICT predictions,
                                          const T* FKD_RESTRICT targets, int64_t n,
                                          int64_t block_begin, int64_t block_end,
                                          double* block_sum_sq, int64_t* block_count) {
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t begin = b * kMaskedRmseBlock;
    const int64_t end = begin + kMaskedRmseBlock < n ? begin + kMaskedRmseBlock : n;
    // Double accumulators: float32 sums of thousands of squares would lose digits.
    // Counts are exact in double (at most kMaskedRmseBlock per block).
    double sum[kLanes] = {};
    double count[kLanes] = {};
    const int64_t size = end - begin;
    const int64_t whole = size - size % kLanes;
    accumulate_lanes(predictions + begin, targets + begin, whole, sum, count);
    for (int64_t i = whole; i < size; ++i) {
      accumulate(predictions[begin + i], targets[begin + i], &sum[i - whole], &count[i - whole]);
    }
    block_sum_sq[b] = combine_lanes(sum);
    block_count[b] = static_cast<int64_t>(combine_lanes(count));
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
FKD_VECTOR_CLONES void masked_rmse_grad(const T* FKD_RESTRICT predictions,
                                        const T* FKD_RESTRICT targets, T coefficient,
                                        int64_t begin, int64_t end,
                                        T* FKD_RESTRICT grad_predictions,
                                        T* FKD_RESTRICT grad_targets) {
  // One pass for whichever outputs are wanted; selects, not branches, per element.
  if (grad_predictions && grad_targets) {
    for (int64_t i = begin; i < end; ++i) {
      const T t = targets[i];
      const bool present = t == t;
      const T d = predictions[i] - t;
      grad_predictions[i] = present ? coefficient * d : T(0);
      grad_targets[i] = present ? -coefficient * d : T(0);  // +0 where missing
    }
  } else if (grad_predictions) {
    for (int64_t i = begin; i < end; ++i) {
      const T t = targets[i];
      grad_predictions[i] = t == t ? coefficient * (predictions[i] - t) : T(0);
    }
  } else if (grad_targets) {
    for (int64_t i = begin; i < end; ++i) {
      const T t = targets[i];
      grad_targets[i] = t == t ? -coefficient * (predictions[i] - t) : T(0);
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
