// Image kernels on the GPU: normalization, flip with keypoint remap, the fused
// flip + normalize, seeded flip decisions, and the normalization gradient.
// Jobs (one launch's raw pointers and sizes) and the block bodies that
// gpu_kernels.cu runs as CUDA kernels and gpu_emulation.cc runs on the CPU.
// NVRTC compiles this header: no standard header here; the host side (job
// makers, launchers) is in gpu_launch.h.
//
// One CUDA block per image does everything that image needs in one launch: its
// flip decision (given, or drawn from the seed and written out), its keypoint
// remap, its statistics (standardize) and its pixels. Pixels move as quads of 4
// values (a 4-byte uint8 load, a 16-byte float store) when the row length is a
// multiple of 4 and the pointers are aligned; a mirrored row of one channel is
// the same quads in reverse order, each reversed. Otherwise one value at a time.
// Per-image sums run in a fixed order (deterministic) and uint8 sums are exact.
#pragma once

#include "kernels/flip.h"
#include "kernels/gpu_common.h"
#include "kernels/image_shape.h"
#include "kernels/normalize.h"
#include "kernels/portability.h"

namespace fkd {
namespace gpu {

// The partner table travels in the kernel's parameters (no host-to-device
// copy); this bounds its size. Kaggle's layout has 15 points.
inline constexpr int64_t kMaxFlipPoints = 1024;
inline constexpr int kImageUnroll = 4;  // quads loaded before the first store
// Indexing within an image is 32-bit (fewer registers, cheaper division).
inline constexpr int64_t kMaxImageValues = (int64_t(1) << 31) - (int64_t(1) << 20);

enum class KeypointType : int32_t { kNone = 0, kFloat = 1, kDouble = 2 };

template <typename In, typename Out>
struct ImageJob {
  const In* in = nullptr;
  Out* out = nullptr;
  int64_t batch = 0;
  int32_t width = 0;
  int32_t channels = 1;
  int32_t row_size = 0;    // width * channels
  int32_t image_size = 0;  // height * row_size
  bool vector_path = false;
  // Pixels: out = (Out(in) - offset) * factor when normalize, else Out(in).
  bool normalize = false;
  bool standardize = false;  // offset and factor from each image's moments
  double offset = 0.0;
  double factor = 1.0;
  // Decisions: `given` (one bool per image, device memory), else drawn from
  // `key` when seeded (and written to `flipped` when not null), else none.
  const bool* given = nullptr;
  bool seeded = false;
  uint64_t key = 0;
  double probability = 0.0;
  bool* flipped = nullptr;
  // Keypoints [batch, 2 * num_points], float or double.
  KeypointType keypoint_type = KeypointType::kNone;
  const void* keypoints = nullptr;
  void* out_keypoints = nullptr;
  int32_t num_points = 0;
  double x_offset = 0.0;
  int16_t partner[kMaxFlipPoints] = {};
};

// Threads per image block.
template <typename In, typename Out>
inline int image_job_threads(const ImageJob<In, Out>& job) {
  return block_threads_for(job.vector_path ? job.image_size / 4 : job.image_size);
}

// ---- per-thread pieces of the block bodies

template <typename In, typename Out>
FKD_HOST_DEVICE inline bool image_flip(const ImageJob<In, Out>& job, int64_t b) {
  if (job.given != nullptr) return job.given[b];
  if (job.seeded) return flip_decision(job.key, b, job.probability);
  return false;
}

template <bool kNormalize, typename In, typename Out>
FKD_HOST_DEVICE inline Out map_value(In v, Out offset, Out factor) {
  if constexpr (kNormalize) {
    return normalize_value(v, offset, factor);
  } else {
    return static_cast<Out>(v);
  }
}

// Quad q (of rq per row) of a mirrored one-channel image: the quad at the
// mirrored place in the same row, its values reversed.
template <typename In>
FKD_HOST_DEVICE inline Quad<In> load_mirrored_quad(const In* image, int32_t q, int32_t rq) {
  const int32_t h = q / rq;
  const int32_t j = q - h * rq;
  const Quad<In> s = load_quad(image + 4 * (h * rq + (rq - 1 - j)));
  return Quad<In>{{s.v[3], s.v[2], s.v[1], s.v[0]}};
}

// Element e of the mirrored image.
FKD_HOST_DEVICE inline int32_t mirrored_element(int32_t e, int32_t row_size, int32_t width,
                                                int32_t channels) {
  const int32_t h = e / row_size;
  return h * row_size + mirror_offset(e - h * row_size, width, channels);
}

template <bool kNormalize, bool kFlip, typename In, typename Out, typename Block>
FKD_HOST_DEVICE inline void image_pixels(const ImageJob<In, Out>& job, int64_t b, Out offset,
                                         Out factor, const Block& blk) {
  const In* src = job.in + b * job.image_size;
  Out* dst = job.out + b * job.image_size;
  blk.each([&](int tid) {
    const int nt = blk.size();
    // Quads, kImageUnroll in flight; mirrored rows of several channels (whose
    // quads straddle pixels) go value by value, as odd widths and unaligned data do.
    if (job.vector_path && (!kFlip || job.channels == 1)) {
      const int32_t nq = job.image_size / 4;
      const int32_t rq = job.row_size / 4;
      for (int32_t base = tid; base < nq; base += kImageUnroll * nt) {
        Quad<In> v[kImageUnroll] = {};
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t q = base + u * nt;
          if (q < nq) v[u] = kFlip ? load_mirrored_quad(src, q, rq) : load_quad(src + 4 * q);
        }
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t q = base + u * nt;
          if (q < nq) {
            Quad<Out> o;
            FKD_UNROLL
            for (int i = 0; i < 4; ++i) o.v[i] = map_value<kNormalize>(v[u].v[i], offset, factor);
            store_quad(dst + 4 * q, o);
          }
        }
      }
    } else {
      const int32_t n = job.image_size;
      for (int32_t base = tid; base < n; base += kImageUnroll * nt) {
        In v[kImageUnroll] = {};
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t e = base + u * nt;
          if (e < n) {
            v[u] = src[kFlip ? mirrored_element(e, job.row_size, job.width, job.channels) : e];
          }
        }
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t e = base + u * nt;
          if (e < n) dst[e] = map_value<kNormalize>(v[u], offset, factor);
        }
      }
    }
  });
}

template <typename K, typename Block>
FKD_HOST_DEVICE inline void remap_keypoints(const K* src, K* dst, const int16_t* partner,
                                            int32_t num_points, K x_offset, bool flip,
                                            const Block& blk) {
  blk.each([&](int tid) {
    for (int32_t k = tid; k < num_points; k += blk.size()) {
      if (flip) {
        flip_keypoint(src, dst, k, partner[k], x_offset);
      } else {
        dst[2 * k] = src[2 * k];
        dst[2 * k + 1] = src[2 * k + 1];
      }
    }
  });
}

// Per-thread partial sums over one image of n values (quads when vec).
template <typename In>
FKD_HOST_DEVICE inline double partial_sum(const In* x, int32_t n, bool vec, int tid, int nt) {
  double s = 0.0;
  if (vec) {
    const int32_t nq = n / 4;
    FKD_UNROLL_4
    for (int32_t q = tid; q < nq; q += nt) {
      const Quad<In> v = load_quad(x + 4 * q);
      for (int i = 0; i < 4; ++i) s += static_cast<double>(v.v[i]);
    }
  } else {
    for (int32_t i = tid; i < n; i += nt) s += static_cast<double>(x[i]);
  }
  return s;
}

template <typename In>
FKD_HOST_DEVICE inline double partial_centered_ss(const In* x, int32_t n, bool vec, double mean,
                                                  int tid, int nt) {
  double s = 0.0;
  if (vec) {
    const int32_t nq = n / 4;
    FKD_UNROLL_4
    for (int32_t q = tid; q < nq; q += nt) {
      const Quad<In> v = load_quad(x + 4 * q);
      for (int i = 0; i < 4; ++i) {
        const double d = static_cast<double>(v.v[i]) - mean;
        s += d * d;
      }
    }
  } else {
    for (int32_t i = tid; i < n; i += nt) {
      const double d = static_cast<double>(x[i]) - mean;
      s += d * d;
    }
  }
  return s;
}

using IntSums = Pair<uint64_t, uint64_t>;  // (sum, sum of squares) of uint8 values

FKD_HOST_DEVICE inline IntSums partial_int_sums(const uint8_t* x, int32_t n, bool vec, int tid,
                                                int nt) {
  uint64_t s = 0, ss = 0;
  if (vec) {
    const int32_t nq = n / 4;
    FKD_UNROLL_4
    for (int32_t q = tid; q < nq; q += nt) {
      const Quad<uint8_t> v = load_quad(x + 4 * q);
      for (int i = 0; i < 4; ++i) {
        const uint32_t u = v.v[i];
        s += u;
        ss += u * u;
      }
    }
  } else {
    for (int32_t i = tid; i < n; i += nt) {
      const uint32_t u = x[i];
      s += u;
      ss += u * u;
    }
  }
  return {s, ss};
}

// Mean and population variance of one image: exact integer sums for uint8, two
// passes in double otherwise (as the CPU kernel).
template <typename In, typename Block>
FKD_HOST_DEVICE inline void image_moments_block(const In* x, int32_t n, bool vec, const Block& blk,
                                                double* mean, double* variance) {
  if constexpr (IsSame<In, uint8_t>::value) {
    const IntSums s =
        blk.sum([&](int tid) { return partial_int_sums(x, n, vec, tid, blk.size()); });
    moments_from_int_sums(s.first, s.second, n, mean, variance);
  } else {
    const double s = blk.sum([&](int tid) { return partial_sum(x, n, vec, tid, blk.size()); });
    const double m = n > 0 ? s / static_cast<double>(n) : 0.0;
    const double ss =
        blk.sum([&](int tid) { return partial_centered_ss(x, n, vec, m, tid, blk.size()); });
    *mean = m;
    *variance = n > 0 ? ss / static_cast<double>(n) : 0.0;
  }
}

// ---- the block body of the image kernel: image b

template <typename In, typename Out, typename Block>
FKD_HOST_DEVICE inline void run_image_block(const ImageJob<In, Out>& job, int64_t b,
                                            const Block& blk) {
  const bool flip = image_flip(job, b);
  if (job.flipped != nullptr) {
    blk.each([&](int tid) {
      if (tid == 0) job.flipped[b] = flip;
    });
  }
  const int64_t cols = 2 * static_cast<int64_t>(job.num_points);
  if (job.keypoint_type == KeypointType::kFloat) {
    remap_keypoints(static_cast<const float*>(job.keypoints) + b * cols,
                    static_cast<float*>(job.out_keypoints) + b * cols, job.partner, job.num_points,
                    static_cast<float>(job.x_offset), flip, blk);
  } else if (job.keypoint_type == KeypointType::kDouble) {
    remap_keypoints(static_cast<const double*>(job.keypoints) + b * cols,
                    static_cast<double*>(job.out_keypoints) + b * cols, job.partner, job.num_points,
                    job.x_offset, flip, blk);
  }
  if (!job.normalize) {
    if (flip) {
      image_pixels<false, true>(job, b, Out(0), Out(1), blk);
    } else {
      image_pixels<false, false>(job, b, Out(0), Out(1), blk);
    }
    return;
  }
  ImageAffine affine{job.offset, job.factor};
  if (job.standardize) {
    double mean, variance;
    image_moments_block(job.in + b * job.image_size, job.image_size, job.vector_path, blk, &mean,
                        &variance);
    affine = standardize_affine(mean, variance, job.image_size);
  }
  // Computed in the output precision, as the CPU kernel does.
  const Out offset = static_cast<Out>(affine.offset);
  const Out factor = static_cast<Out>(affine.factor);
  if (flip) {
    image_pixels<true, true>(job, b, offset, factor, blk);
  } else {
    image_pixels<true, false>(job, b, offset, factor, blk);
  }
}

// ---- normalization gradient (float images), one block per image

template <typename In, typename Out>
struct NormalizeGradJob {
  const Out* grad = nullptr;
  const In* images = nullptr;
  In* out = nullptr;
  int64_t batch = 0;
  int32_t image_size = 0;
  bool vector_path = false;
  bool standardize = false;
  double factor = 1.0;  // scale and affine: dx = g * factor
};

template <typename In, typename Out>
inline int normalize_grad_job_threads(const NormalizeGradJob<In, Out>& job) {
  return block_threads_for(job.vector_path ? job.image_size / 4 : job.image_size);
}

// dx[i] = In(fn(g[i], x[i])) over one image; x is read only when kReadsImages.
template <bool kReadsImages, typename In, typename Out, typename Fn, typename Block>
FKD_HOST_DEVICE inline void grad_elementwise(const NormalizeGradJob<In, Out>& job, int64_t b,
                                             const Block& blk, Fn fn) {
  const int32_t n = job.image_size;
  const Out* g = job.grad + b * n;
  const In* x = job.images + b * n;
  In* dx = job.out + b * n;
  blk.each([&](int tid) {
    const int nt = blk.size();
    if (job.vector_path) {
      const int32_t nq = n / 4;
      for (int32_t base = tid; base < nq; base += kImageUnroll * nt) {
        Quad<Out> gv[kImageUnroll] = {};
        Quad<In> xv[kImageUnroll] = {};
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t q = base + u * nt;
          if (q < nq) {
            gv[u] = load_quad(g + 4 * q);
            if (kReadsImages) xv[u] = load_quad(x + 4 * q);
          }
        }
        FKD_UNROLL
        for (int u = 0; u < kImageUnroll; ++u) {
          const int32_t q = base + u * nt;
          if (q < nq) {
            Quad<In> o;
            FKD_UNROLL
            for (int i = 0; i < 4; ++i) {
              o.v[i] = static_cast<In>(
                  fn(static_cast<double>(gv[u].v[i]), static_cast<double>(xv[u].v[i])));
            }
            store_quad(dx + 4 * q, o);
          }
        }
      }
    } else {
      for (int32_t i = tid; i < n; i += nt) {
        const double xi = kReadsImages ? static_cast<double>(x[i]) : 0.0;
        dx[i] = static_cast<In>(fn(static_cast<double>(g[i]), xi));
      }
    }
  });
}

// kStandardize must equal job.standardize: the CUDA kernel is instantiated per
// mode, so the element-wise modes carry none of standardize's registers.
template <bool kStandardize, typename In, typename Out, typename Block>
FKD_HOST_DEVICE inline void run_normalize_grad_block(const NormalizeGradJob<In, Out>& job,
                                                     int64_t b, const Block& blk) {
  const int32_t n = job.image_size;
  if constexpr (!kStandardize) {
    const double factor = job.factor;
    grad_elementwise<false>(job, b, blk, [factor](double g, double) { return g * factor; });
  } else {
    if (n == 0) return;
    const In* x = job.images + b * n;
    const Out* g = job.grad + b * n;
    double mean, variance;
    image_moments_block(x, n, job.vector_path, blk, &mean, &variance);
    const StandardizeScale scale = standardize_scale(variance, n);
    const Pair<double, double> sums = blk.sum([&](int tid) {
      Pair<double, double> s{0.0, 0.0};
      for (int32_t i = tid; i < n; i += blk.size()) {
        const double gi = static_cast<double>(g[i]);
        s.first += gi;
        s.second += standardize_grad_term(gi, static_cast<double>(x[i]), mean, scale.factor);
      }
      return s;
    });
    const StandardizeGradMeans means =
        standardize_grad_means(sums.first, sums.second, n, scale.std_active);
    const double factor = scale.factor;
    grad_elementwise<true>(job, b, blk, [mean, factor, means](double gi, double xi) {
      return standardize_grad_value(gi, xi, mean, factor, means);
    });
  }
}

// ---- seeded flip decisions alone, kDecisionThreads per block

inline constexpr int kDecisionThreads = 256;

struct DecisionsJob {
  uint64_t key = 0;
  double probability = 0.5;
  int64_t batch = 0;
  bool* out = nullptr;
};

inline int64_t decisions_blocks(int64_t batch) {
  return (batch + kDecisionThreads - 1) / kDecisionThreads;
}

template <typename Block>
FKD_HOST_DEVICE inline void run_decisions_block(const DecisionsJob& job, int64_t block,
                                                const Block& blk) {
  blk.each([&](int tid) {
    const int64_t i = block * kDecisionThreads + tid;
    if (i < job.batch) job.out[i] = flip_decision(job.key, i, job.probability);
  });
}

}  // namespace gpu
}  // namespace fkd
