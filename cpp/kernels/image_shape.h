// Geometry of a batch of images laid out [batch, height, width, channels]
// (channels == 1 for rank-3 input), row-major.
#pragma once

#include "kernels/portability.h"

namespace fkd {

struct ImageShape {
  int64_t batch = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;

  int64_t row_size() const { return width * channels; }
  int64_t rows() const { return batch * height; }
  int64_t image_size() const { return height * width * channels; }
  int64_t size() const { return batch * image_size(); }
};

// Offset within a row of the value that lands at offset r of the mirrored row:
// the same channel of pixel column width - 1 - r / channels.
// I is the index type (32-bit on the GPU's fast paths).
template <typename I>
FKD_HOST_DEVICE inline I mirror_offset(I r, I width, I channels) {
  if (channels == 1) return width - 1 - r;
  const I w = r / channels;
  return (width - 1 - w) * channels + (r - w * channels);
}

// dst[w] = map(src[width - 1 - w]) for each pixel of one row (all channels).
template <typename In, typename Out, typename Map>
inline void mirror_row(const In* FKD_RESTRICT src, Out* FKD_RESTRICT dst, int64_t width,
                       int64_t channels, Map map) {
  if (channels == 1) {
    for (int64_t w = 0; w < width; ++w) dst[w] = map(src[width - 1 - w]);
    return;
  }
  for (int64_t w = 0; w < width; ++w) {
    const In* s = src + (width - 1 - w) * channels;
    Out* d = dst + w * channels;
    for (int64_t c = 0; c < channels; ++c) d[c] = map(s[c]);
  }
}

}  // namespace fkd
