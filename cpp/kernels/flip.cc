#include "kernels/flip.h"

#include <cstring>

namespace fkd {

std::string check_flip_pairs(const int64_t* pairs, int64_t num_pair_entries, int64_t num_points) {
  if (num_pair_entries % 2 != 0) {
    return "pairs must hold an even number of indices (left, right, left, right, ...), got " +
           std::to_string(num_pair_entries);
  }
  for (int64_t i = 0; i < num_pair_entries; ++i) {
    const int64_t k = pairs[i];
    if (k < 0 || (num_points >= 0 && k >= num_points)) {
      return "pairs[" + std::to_string(i) + "] = " + std::to_string(k) + " is out of range" +
             (num_points >= 0 ? " for " + std::to_string(num_points) + " keypoints" : "");
    }
    // Pair lists are a few dozen entries: a quadratic scan is cheaper than a set.
    for (int64_t j = 0; j < i; ++j) {
      if (pairs[j] == k) {
        return "pairs[" + std::to_string(i) + "] = " + std::to_string(k) + " repeats pairs[" +
               std::to_string(j) + "]: a point can be in one pair only";
      }
    }
  }
  return "";
}

void flip_partners(const int64_t* pairs, int64_t num_pair_entries, int64_t num_points,
                   int32_t* partner) {
  for (int64_t k = 0; k < num_points; ++k) partner[k] = static_cast<int32_t>(k);
  for (int64_t i = 0; i + 1 < num_pair_entries; i += 2) {
    partner[pairs[i]] = static_cast<int32_t>(pairs[i + 1]);
    partner[pairs[i + 1]] = static_cast<int32_t>(pairs[i]);
  }
}

template <typename T>
FKD_VECTOR_CLONES void flip_rows(const T* in, T* out, const ImageShape& shape, const bool* flip,
                                 int64_t row_begin, int64_t row_end) {
  const int64_t row = shape.row_size();
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* FKD_RESTRICT src = in + r * row;
    T* FKD_RESTRICT dst = out + r * row;
    if (flip[r / shape.height]) {
      if (shape.channels == 1) {
        // A reversed load the compiler vectorizes as a load plus a permutation.
        const T* FKD_RESTRICT last = src + row - 1;
        for (int64_t w = 0; w < row; ++w) dst[w] = last[-w];
      } else {
        mirror_row(src, dst, shape.width, shape.channels, [](T v) { return v; });
      }
    } else if (dst != src) {
      std::memcpy(dst, src, static_cast<size_t>(row) * sizeof(T));
    }
  }
}

template <typename T>
void flip_keypoints(const T* in, T* out, int64_t num_points, const bool* flip,
                    const int32_t* partner, T x_offset, int64_t begin, int64_t end) {
  const int64_t cols = 2 * num_points;
  for (int64_t b = begin; b < end; ++b) {
    const T* src = in + b * cols;
    T* dst = out + b * cols;
    if (!flip[b]) {
      if (dst != src) std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(T));
      continue;
    }
    for (int64_t k = 0; k < num_points; ++k) flip_keypoint(src, dst, k, partner[k], x_offset);
  }
}

void flip_decisions(uint64_t key, double probability, int64_t begin, int64_t end, bool* out) {
  for (int64_t i = begin; i < end; ++i) out[i] = flip_decision(key, i, probability);
}

template void flip_rows<uint8_t>(const uint8_t*, uint8_t*, const ImageShape&, const bool*, int64_t,
                                 int64_t);
template void flip_rows<float>(const float*, float*, const ImageShape&, const bool*, int64_t,
                               int64_t);
template void flip_rows<double>(const double*, double*, const ImageShape&, const bool*, int64_t,
                                int64_t);

template void flip_keypoints<float>(const float*, float*, int64_t, const bool*, const int32_t*,
                                    float, int64_t, int64_t);
template void flip_keypoints<double>(const double*, double*, int64_t, const bool*, const int32_t*,
                                     double, int64_t, int64_t);

}  // namespace fkd
