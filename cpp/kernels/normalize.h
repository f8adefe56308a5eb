// Image normalization: every mode is a per-image affine map y = (x - offset) * factor.
//
//   scale:        offset 0,    factor = scale
//   affine:       offset mean, factor = 1 / stddev
//   standardize:  offset = image mean, factor = 1 / max(std, 1 / sqrt(N))  (population std,
//                 N pixels per image), exactly tf.image.per_image_standardization.
//
// Work is split by images (statistics) and by rows (the element-wise pass) so a
// thread pool can shard either.
#pragma once

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstdint>
#include <string>
#endif

#include "kernels/image_shape.h"
#include "kernels/portability.h"

namespace fkd {

enum class NormalizeMode { kScale, kStandardize, kAffine };

struct NormalizeParams {
  NormalizeMode mode = NormalizeMode::kScale;
  double scale = 1.0 / 255.0;
  double mean = 0.0;
  double stddev = 1.0;
};

#if !defined(__CUDACC_RTC__)
// Fills *params from a mode name ("scale", "standardize" or "affine") and its
// scalars. Returns "" when they are valid, else what is wrong (every face
// reports this message in its own error type).
std::string make_normalize_params(const std::string& mode, double scale, double mean, double stddev,
                                  NormalizeParams* params);
#endif

struct ImageAffine {
  double offset;
  double factor;
};

// ---- Per-value and per-image math shared by the CPU and CUDA kernels.

// The affine map of the scale and affine modes (standardize is per image).
inline ImageAffine constant_affine(const NormalizeParams& params) {
  return params.mode == NormalizeMode::kAffine ? ImageAffine{params.mean, 1.0 / params.stddev}
                                               : ImageAffine{0.0, params.scale};
}

// One normalized value, computed in the output precision as a float pipeline would.
template <typename In, typename Out>
FKD_HOST_DEVICE inline Out normalize_value(In v, Out offset, Out factor) {
  return (static_cast<Out>(v) - offset) * factor;
}

// Mean and population variance of n uint8 values from their exact integer sums
// (s and ss are exact in double below 2^53; the subtraction loses little).
FKD_HOST_DEVICE inline void moments_from_int_sums(uint64_t s, uint64_t ss, int64_t n, double* mean,
                                                  double* variance) {
  if (n == 0) {
    *mean = 0.0;
    *variance = 0.0;
    return;
  }
  const double dn = static_cast<double>(n);
  const double m = static_cast<double>(s) / dn;
  const double var = (static_cast<double>(ss) - static_cast<double>(s) * m) / dn;
  *mean = m;
  *variance = var > 0.0 ? var : 0.0;
}

// Standardize divides by max(std, 1 / sqrt(N)); std_active says std won (ties
// go to std, as tf.maximum routes them to its first input), which the gradient
// needs. A NaN std (an image holding inf or NaN) wins too, as tf.maximum
// propagates NaN: every value of such an image becomes NaN, as in
// tf.image.per_image_standardization.
struct StandardizeScale {
  double factor;
  bool std_active;
};

FKD_HOST_DEVICE inline StandardizeScale standardize_scale(double variance, int64_t n) {
  const double min_std = n > 0 ? 1.0 / sqrt(static_cast<double>(n)) : 1.0;
  const double std = sqrt(variance);
  const bool active = !(std < min_std);
  return {1.0 / (active ? std : min_std), active};
}

FKD_HOST_DEVICE inline ImageAffine standardize_affine(double mean, double variance, int64_t n) {
  return {mean, standardize_scale(variance, n).factor};
}

// Standardize's gradient at one value: factor * (g - m(g) - y * m(g * y)) with
// y = (x - mean) * factor; the means come from the per-image sums of g and of
// standardize_grad_term (m(g * y) counts only while std is active).
FKD_HOST_DEVICE inline double standardize_grad_term(double g, double x, double mean,
                                                    double factor) {
  return g * (x - mean) * factor;
}

struct StandardizeGradMeans {
  double mean_g;
  double mean_gy;
};

FKD_HOST_DEVICE inline StandardizeGradMeans standardize_grad_means(double sum_g, double sum_gy,
                                                                   int64_t n, bool std_active) {
  const double dn = static_cast<double>(n);
  return {sum_g / dn, std_active ? sum_gy / dn : 0.0};
}

FKD_HOST_DEVICE inline double standardize_grad_value(double g, double x, double mean, double factor,
                                                     const StandardizeGradMeans& means) {
  const double y = (x - mean) * factor;
  return factor * (g - means.mean_g - y * means.mean_gy);
}

#if !defined(__CUDACC_RTC__)
// ---- CPU kernels.

// Mean and population variance of one image's n values, computed exactly for
// uint8 (integer sums) and in two passes of double for floating input.
template <typename In>
void image_moments(const In* image, int64_t n, double* mean, double* variance);

// Per-image maps for images [image_begin, image_end).
template <typename In>
void normalize_affine_params(const In* images, const ImageShape& shape,
                             const NormalizeParams& params, int64_t image_begin, int64_t image_end,
                             ImageAffine* per_image);

// y = (x - offset) * factor for rows [row_begin, row_end) of the batch, where a row
// is one image line of width * channels values; per_image is indexed by image.
// Where flip (one decision per image, may be null) says so, the row is also
// mirrored: this is the fused uint8 -> flip -> float path of the input pipeline.
template <typename In, typename Out>
void normalize_rows(const In* in, Out* out, const ImageShape& shape, const ImageAffine* per_image,
                    const bool* flip, int64_t row_begin, int64_t row_end);

// Gradient with respect to floating input images [image_begin, image_end), given
// the gradient of the normalized output. For standardize, with y the output and
// m(.) the per-image mean:  dx = factor * (g - m(g) - y * m(g * y)) while the
// image's std exceeds 1/sqrt(N), else factor * (g - m(g)).
template <typename In, typename Out>
void normalize_grad(const Out* grad, const In* images, const ImageShape& shape,
                    const NormalizeParams& params, int64_t image_begin, int64_t image_end,
                    In* grad_images);
#endif

}  // namespace fkd
