#include "kernels/normalize.h"

#include <cmath>
#include <cstdio>

#include "kernels/portability.h"

namespace fkd {

namespace {

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

}  // namespace

std::string make_normalize_params(const std::string& mode, double scale, double mean, double stddev,
                                  NormalizeParams* params) {
  if (mode == "scale") {
    params->mode = NormalizeMode::kScale;
  } else if (mode == "standardize") {
    params->mode = NormalizeMode::kStandardize;
  } else if (mode == "affine") {
    params->mode = NormalizeMode::kAffine;
  } else {
    return "mode must be 'scale', 'standardize' or 'affine', got '" + mode + "'";
  }
  if (!std::isfinite(scale)) return "scale must be finite, got " + number(scale);
  if (params->mode == NormalizeMode::kAffine &&
      (!std::isfinite(mean) || !std::isfinite(stddev) || !(stddev > 0.0))) {
    return "affine normalization needs a finite mean and a finite stddev > 0, got mean " +
           number(mean) + " and stddev " + number(stddev);
  }
  params->scale = scale;
  params->mean = mean;
  params->stddev = stddev;
  return "";
}
namespace {

template <typename In>
double image_sum(const In* FKD_RESTRICT x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

}  // namespace

template <typename In>
void image_moments(const In* FKD_RESTRICT image, int64_t n, double* mean, double* variance) {
  if (n == 0) {
    *mean = 0.0;
    *variance = 0.0;
    return;
  }
  const double m = image_sum(image, n) / static_cast<double>(n);
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(image[i]) - m;
    ss += d * d;
  }
  *mean = m;
  *variance = ss / static_cast<double>(n);
}

template <>
void image_moments<uint8_t>(const uint8_t* FKD_RESTRICT image, int64_t n, double* mean,
                            double* variance) {
  if (n == 0) {
    *mean = 0.0;
    *variance = 0.0;
    return;
  }
  // Integer sums are exact (and vectorize); 255^2 * n overflows only past 1e14 pixels.
  uint64_t s = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t v = image[i];
    s += v;
    ss += v * v;
  }
  moments_from_int_sums(s, ss, n, mean, variance);
}

template <typename In>
void normalize_affine_params(const In* images, const ImageShape& shape,
                             const NormalizeParams& params, int64_t image_begin, int64_t image_end,
                             ImageAffine* per_image) {
  const int64_t n = shape.image_size();
  for (int64_t b = image_begin; b < image_end; ++b) {
    if (params.mode != NormalizeMode::kStandardize) {
      per_image[b] = constant_affine(params);
      continue;
    }
    double mean, var;
    image_moments(images + b * n, n, &mean, &var);
    per_image[b] = standardize_affine(mean, var, n);
  }
}

namespace {

// The element-wise pass, written as plain loops the compiler vectorizes in each
// clone: the conversion to Out, the subtraction and the product keep their order
// (no FMA), so every clone gives the same bits. Computed in the output
// precision, as a float pipeline would.
template <typename In, typename Out>
inline void affine_span(const In* FKD_RESTRICT src, Out* FKD_RESTRICT dst, int64_t n, Out offset,
                        Out factor) {
  for (int64_t i = 0; i < n; ++i) dst[i] = normalize_value(src[i], offset, factor);
}

// The same, mirrored: dst[i] = map(src[n - 1 - i]) (one channel per pixel). The
// reversed load vectorizes as a load plus an in-register permutation.
template <typename In, typename Out>
inline void affine_span_reversed(const In* FKD_RESTRICT src, Out* FKD_RESTRICT dst, int64_t n,
                                 Out offset, Out factor) {
  const In* FKD_RESTRICT last = src + n - 1;
  for (int64_t i = 0; i < n; ++i) dst[i] = normalize_value(last[-i], offset, factor);
}

}  // namespace

template <typename In, typename Out>
FKD_VECTOR_CLONES void normalize_rows(const In* FKD_RESTRICT in, Out* FKD_RESTRICT out,
                                      const ImageShape& shape, const ImageAffine* per_image,
                                      const bool* flip, int64_t row_begin, int64_t row_end) {
  const int64_t row = shape.row_size();
  int64_t r = row_begin;
  while (r < row_end) {
    const int64_t b = r / shape.height;
    // Rows of one image share its map; an unflipped image's rows are contiguous,
    // so they go through as one span.
    const int64_t image_end = (b + 1) * shape.height < row_end ? (b + 1) * shape.height : row_end;
    const Out offset = static_cast<Out>(per_image[b].offset);
    const Out factor = static_cast<Out>(per_image[b].factor);
    if (flip && flip[b]) {
      for (; r < image_end; ++r) {
        const In* src = in + r * row;
        Out* dst = out + r * row;
        if (shape.channels == 1) {
          affine_span_reversed(src, dst, row, offset, factor);
        } else {
          mirror_row(src, dst, shape.width, shape.channels,
                     [offset, factor](In v) { return normalize_value(v, offset, factor); });
        }
      }
    } else {
      affine_span(in + r * row, out + r * row, (image_end - r) * row, offset, factor);
      r = image_end;
    }
  }
}

template <typename In, typename Out>
void normalize_grad(const Out* FKD_RESTRICT grad, const In* FKD_RESTRICT images,
                    const ImageShape& shape, const NormalizeParams& params, int64_t image_begin,
                    int64_t image_end, In* FKD_RESTRICT grad_images) {
  const int64_t n = shape.image_size();
  for (int64_t b = image_begin; b < image_end; ++b) {
    const Out* g = grad + b * n;
    In* dx = grad_images + b * n;
    if (params.mode != NormalizeMode::kStandardize) {
      const double factor = constant_affine(params).factor;
      for (int64_t i = 0; i < n; ++i) dx[i] = static_cast<In>(static_cast<double>(g[i]) * factor);
      continue;
    }
    if (n == 0) continue;
    const In* x = images + b * n;
    double mean, var;
    image_moments(x, n, &mean, &var);
    const StandardizeScale scale = standardize_scale(var, n);
    double sum_g = 0.0, sum_gy = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double gi = static_cast<double>(g[i]);
      sum_g += gi;
      sum_gy += standardize_grad_term(gi, static_cast<double>(x[i]), mean, scale.factor);
    }
    const StandardizeGradMeans means = standardize_grad_means(sum_g, sum_gy, n, scale.std_active);
    for (int64_t i = 0; i < n; ++i) {
      dx[i] = static_cast<In>(standardize_grad_value(
          static_cast<double>(g[i]), static_cast<double>(x[i]), mean, scale.factor, means));
    }
  }
}

#define FKD_INSTANTIATE_IN(In)                                                                    \
  template void image_moments<In>(const In*, int64_t, double*, double*);                          \
  template void normalize_affine_params<In>(const In*, const ImageShape&, const NormalizeParams&, \
                                            int64_t, int64_t, ImageAffine*);
FKD_INSTANTIATE_IN(uint8_t)
FKD_INSTANTIATE_IN(float)
FKD_INSTANTIATE_IN(double)

#define FKD_INSTANTIATE_ROWS(In, Out)                                                           \
  template void normalize_rows<In, Out>(const In*, Out*, const ImageShape&, const ImageAffine*, \
                                        const bool*, int64_t, int64_t);
FKD_INSTANTIATE_ROWS(uint8_t, float)
FKD_INSTANTIATE_ROWS(uint8_t, double)
FKD_INSTANTIATE_ROWS(float, float)
FKD_INSTANTIATE_ROWS(float, double)
FKD_INSTANTIATE_ROWS(double, float)
FKD_INSTANTIATE_ROWS(double, double)

#define FKD_INSTANTIATE_GRAD(In, Out)                                             \
  template void normalize_grad<In, Out>(const Out*, const In*, const ImageShape&, \
                                        const NormalizeParams&, int64_t, int64_t, In*);
FKD_INSTANTIATE_GRAD(float, float)
FKD_INSTANTIATE_GRAD(float, double)
FKD_INSTANTIATE_GRAD(double, float)
FKD_INSTANTIATE_GRAD(double, double)

}  // namespace fkd
