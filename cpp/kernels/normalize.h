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

#include <cstdint>

#include "kernels/image_shape.h"

namespace fkd {

enum class NormalizeMode { kScale, kStandardize, kAffine };

struct NormalizeParams {
  NormalizeMode mode = NormalizeMode::kScale;
  double scale = 1.0 / 255.0;
  double mean = 0.0;
  double stddev = 1.0;
};

struct ImageAffine {
  double offset;
  double factor;
};

// Mean and population variance of one image's n values, computed exactly for
// uint8 (integer sums) and in two passes of double for floating input.
template <typename In>
void image_moments(const In* image, int64_t n, double* mean, double* variance);

// Per-image maps for images [image_begin, image_end).
template <typename In>
void normalize_affine_params(const In* images, const ImageShape& shape,
                             const NormalizeParams& params, int64_t image_begin,
                             int64_t image_end, ImageAffine* per_image);

// y = (x - offset) * factor for rows [row_begin, row_end) of the batch, where a row
// is one image line of width * channels values; per_image is indexed by image.
// Where flip (one decision per image, may be null) says so, the row is also
// mirrored: this is the fused uint8 -> flip -> float path of the input pipeline.
template <typename In, typename Out>
void normalize_rows(const In* in, Out* out, const ImageShape& shape,
                    const ImageAffine* per_image, const bool* flip, int64_t row_begin,
                    int64_t row_end);

// Gradient with respect to floating input images [image_begin, image_end), given
// the gradient of the normalized output. For standardize, with y the output and
// m(.) the per-image mean:  dx = factor * (g - m(g) - y * m(g * y)) while the
// image's std exceeds 1/sqrt(N), else factor * (g - m(g)).
template <typename In, typename Out>
void normalize_grad(const Out* grad, const In* images, const ImageShape& shape,
                    const NormalizeParams& params, int64_t image_begin, int64_t image_end,
                    In* grad_images);

}  // namespace fkd
