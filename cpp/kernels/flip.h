// Horizontal flip of images with the matching keypoint remap.
//
// A flipped sample's image is mirrored left-right and each keypoint (x, y) moves
// to (x_offset - x, y) in the slot of its left/right partner (x_offset is W for
// continuous pixel coordinates, W - 1 for pixel centres). NaN stays NaN, so a
// missing point stays missing in its partner's slot. Samples not flipped pass
// through untouched.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/image_shape.h"
#include "kernels/portability.h"

namespace fkd {

// Checks left/right pairs flattened as [l0, r0, l1, r1, ...]: an even count,
// every index >= 0 and below num_points (skipped when num_points < 0, i.e. not yet
// known), none used twice. Returns "" when valid, else what is wrong.
std::string check_flip_pairs(const int64_t* pairs, int64_t num_pair_entries, int64_t num_points);

// partner[k] for k in [0, num_points): the point k swaps with (k when unpaired).
// The pairs must have passed check_flip_pairs.
void flip_partners(const int64_t* pairs, int64_t num_pair_entries, int64_t num_points,
                   int32_t* partner);

// Mirrors rows [row_begin, row_end) of flipped images and copies the others.
// flip holds one decision per image.
template <typename T>
void flip_rows(const T* in, T* out, const ImageShape& shape, const bool* flip, int64_t row_begin,
               int64_t row_end);

// (The fused flip + normalize of images is normalize_rows with a flip vector.)

// Moves point k of a flipped sample to its partner's slot p: x -> x_offset - x.
// Shared by the CPU and CUDA kernels.
template <typename T>
FKD_HOST_DEVICE inline void flip_keypoint(const T* src, T* dst, int64_t k, int64_t p, T x_offset) {
  dst[2 * p] = x_offset - src[2 * k];
  dst[2 * p + 1] = src[2 * k + 1];
}

// Keypoints [batch, 2 * num_points] of samples [begin, end). The gradient of the
// remap is the same remap with x_offset = 0 (x' = -x).
template <typename T>
void flip_keypoints(const T* in, T* out, int64_t num_points, const bool* flip,
                    const int32_t* partner, T x_offset, int64_t begin, int64_t end);

// Stateless flip decisions: sample i is flipped when u_i < probability, with
// u_i uniform in [0, 1) drawn from a counter-based hash of (seed, i). The same
// seed gives the same decisions on every device and in fkd_ops.reference.
FKD_HOST_DEVICE inline uint64_t flip_mix64(uint64_t z) {
  // SplitMix64's finalizer: a bijection with full avalanche.
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

inline constexpr uint64_t kFlipGolden = 0x9e3779b97f4a7c15ULL;

FKD_HOST_DEVICE inline uint64_t flip_seed_key(int64_t seed0, int64_t seed1) {
  return flip_mix64(static_cast<uint64_t>(seed0) ^
                    flip_mix64(static_cast<uint64_t>(seed1) + kFlipGolden));
}

FKD_HOST_DEVICE inline bool flip_decision(uint64_t key, int64_t i, double probability) {
  const uint64_t bits = flip_mix64(key + static_cast<uint64_t>(i + 1) * kFlipGolden);
  const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
  return u < probability;
}

void flip_decisions(uint64_t key, double probability, int64_t begin, int64_t end, bool* out);

}  // namespace fkd
