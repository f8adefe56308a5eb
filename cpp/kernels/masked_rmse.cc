#include "kernels/masked_rmse.h"

#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
// Lanes [0, kLanes) over `whole` elements (a multiple of kLanes), in GCC/Clang
// vector extensions (4 doubles a vector, lowered to the baseline ISA): the
// portable path, branchless like the AVX2 one below and in the same order.
typedef double F64x4 __attribute__((vector_size(32)));
typedef long long I64x4 __attribute__((vector_size(32)));
typedef float F32x4u __attribute__((vector_size(16), aligned(4), may_alias));
typedef double F64x4u __attribute__((vector_size(32), aligned(8), may_alias));

inline F64x4 load4(const float* x) {
  return __builtin_convertvector(*reinterpret_cast<const F32x4u*>(x), F64x4);
}
inline F64x4 load4(const double* x) { return *reinterpret_cast<const F64x4u*>(x); }

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
      const F64x4 d =
          reinterpret_cast<F64x4>(reinterpret_cast<I64x4>(load4(p + i + 4 * v) - tv) & present);
      s[v] += d * d;
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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FKD_MASKED_RMSE_AVX2 1
// The same lanes for float input in AVX2 registers, chosen at run time on CPUs
// that have AVX2: the generic vectors above are lowered for the baseline ISA and
// convert float -> double in pieces (twice the instructions). Multiply and add
// stay separate (no FMA), so the bits match the portable path.
__attribute__((target("avx2"))) void accumulate_lanes_avx2(const float* FKD_RESTRICT p,
                                                           const float* FKD_RESTRICT t,
                                                           int64_t whole, double* sum,
                                                           double* count) {
  constexpr int kVectors = kLanes / 4;
  __m256d s[kVectors], c[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    s[v] = _mm256_setzero_pd();
    c[v] = _mm256_setzero_pd();
  }
  const __m256d one = _mm256_set1_pd(1.0);
  for (int64_t i = 0; i < whole; i += kLanes) {
    for (int v = 0; v < kVectors; ++v) {
      const __m256d tv = _mm256_cvtps_pd(_mm_loadu_ps(t + i + 4 * v));
      const __m256d pv = _mm256_cvtps_pd(_mm_loadu_ps(p + i + 4 * v));
      const __m256d present = _mm256_cmp_pd(tv, tv, _CMP_EQ_OQ);  // false only for NaN
      const __m256d d = _mm256_and_pd(_mm256_sub_pd(pv, tv), present);
      s[v] = _mm256_add_pd(s[v], _mm256_mul_pd(d, d));
      c[v] = _mm256_add_pd(c[v], _mm256_and_pd(one, present));
    }
  }
  for (int v = 0; v < kVectors; ++v) {
    _mm256_storeu_pd(sum + 4 * v, s[v]);
    _mm256_storeu_pd(count + 4 * v, c[v]);
  }
}

// FKD_OPS_NO_AVX2=1 in the environment forces the portable path, so tests can
// check both paths against the same exact oracle on one machine.
inline bool use_avx2() {
  static const bool yes =
      __builtin_cpu_supports("avx2") && std::getenv("FKD_OPS_NO_AVX2") == nullptr;
  return yes;
}
#endif

}  // namespace

const char* masked_rmse_float_path() {
#if FKD_MASKED_RMSE_AVX2
  if (use_avx2()) return "avx2";
#endif
  return "portable";
}

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
#if FKD_MASKED_RMSE_AVX2
    if constexpr (sizeof(T) == sizeof(float)) {
      if (use_avx2()) {
        accumulate_lanes_avx2(predictions + begin, targets + begin, whole, sum, count);
      } else {
        accumulate_lanes(predictions + begin, targets + begin, whole, sum, count);
      }
    } else {
      accumulate_lanes(predictions + begin, targets + begin, whole, sum, count);
    }
#else
    accumulate_lanes(predictions + begin, targets + begin, whole, sum, count);
#endif
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
                                        const T* FKD_RESTRICT targets, T coefficient, int64_t begin,
                                        int64_t end, T* FKD_RESTRICT grad_predictions,
                                        T* FKD_RESTRICT grad_targets) {
  // One pass for whichever outputs are wanted; selects, not branches, per element.
  // masked_rmse_grad_value is the GPU kernels' per-element rule too.
  const T negated = -coefficient;
  if (grad_predictions && grad_targets) {
    for (int64_t i = begin; i < end; ++i) {
      grad_predictions[i] = masked_rmse_grad_value(predictions[i], targets[i], coefficient);
      grad_targets[i] =
          masked_rmse_grad_value(predictions[i], targets[i], negated);  // +0 where missing
    }
  } else if (grad_predictions) {
    for (int64_t i = begin; i < end; ++i) {
      grad_predictions[i] = masked_rmse_grad_value(predictions[i], targets[i], coefficient);
    }
  } else if (grad_targets) {
    for (int64_t i = begin; i < end; ++i) {
      grad_targets[i] = masked_rmse_grad_value(predictions[i], targets[i], negated);
    }
  }
}

#define FKD_INSTANTIATE(T)                                                                    \
  template void masked_rmse_blocks<T>(const T*, const T*, int64_t, int64_t, int64_t, double*, \
                                      int64_t*);                                              \
  template void masked_rmse_grad<T>(const T*, const T*, T, int64_t, int64_t, T*, T*);
FKD_INSTANTIATE(float)
FKD_INSTANTIATE(double)
#undef FKD_INSTANTIATE

}  // namespace fkd
