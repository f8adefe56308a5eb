// The host side of the GPU kernels, free of TensorFlow, Python and CUDA headers:
// the job makers (sizes checked, raw pointers filled in), the launchers that
// enqueue a job on a CUDA stream, the host emulation of the kernel bodies, and
// what this build and this machine's driver offer.
//
// The kernels (gpu_kernels.cu) are compiled by NVRTC (CUDA 12) at build time and
// embedded in the library: a cubin per architecture and PTX for newer GPUs.
// gpu_launch.cc opens libcuda.so.1 at run time (a machine without a driver loads
// the library fine and gets an error status at the first launch), loads the
// image that fits the GPU into each CUDA context once (cuModuleLoadData), and
// launches with cuLaunchKernel on the caller's stream: the TensorFlow op
// kernels and the pybind11 device-pointer entry points share this code.
// Thread-safe. Nothing here throws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/flip.h"
#include "kernels/image_gpu.h"
#include "kernels/image_shape.h"
#include "kernels/masked_rmse_gpu.h"
#include "kernels/normalize.h"

struct CUstream_st;  // cudaStream_t and CUstream are CUstream_st*: no CUDA header needed

namespace fkd {

using GpuStream = CUstream_st*;

// A launch's outcome: code 0 for success, a CUresult from the driver, or one of
// the codes below; message says what failed, with CUDA's error name.
struct GpuStatus {
  int code = 0;
  std::string message;
  bool ok() const { return code == 0; }
};

namespace gpu {

// Codes of failures that are not the driver's: the GPU cannot run these kernels.
inline constexpr int kNoDriver = -1;  // libcuda.so.1 missing or too old
inline constexpr int kNoImage = -2;   // no cubin or PTX for this GPU (or the driver's JIT refused)
inline constexpr int kNotBuilt = -3;  // this build has no GPU kernels
inline constexpr int kBadGeometry = -4;  // a grid beyond CUDA's limits

// True for the codes above that say the kernels cannot run on this machine
// (the fix is a driver or a rebuild, not the input).
inline bool unavailable(const GpuStatus& s) {
  return s.code == kNoDriver || s.code == kNoImage || s.code == kNotBuilt;
}

// One embedded kernel image (the generated gpu_kernel_images.cc defines the table).
struct KernelImage {
  int arch;  // 60 for sm_60 / compute_60
  bool ptx;  // PTX text (NUL-terminated) rather than a cubin
  const unsigned char* data;
  int64_t size;
};

// Defined by the generated gpu_kernel_images.cc in builds with GPU kernels.
extern const KernelImage kKernelImages[];
extern const int kNumKernelImages;
extern const char kNvrtcVersion[];

// What this build holds: the images (none without GPU kernels) and the NVRTC
// version that compiled them ("" without).
std::vector<KernelImage> kernel_images();
std::string nvrtc_version();
// The extern "C" names of every kernel the launchers use.
std::vector<std::string> kernel_names();

// The image for a GPU of compute capability major.minor under a driver of
// version driver_version (1000 * major + 10 * minor, as cuDriverGetVersion):
// the cubin of the same major and the highest minor not above the GPU's, else
// the newest PTX not above it if the driver can compile it (only the PTX when
// the environment sets FKD_OPS_GPU_FORCE_PTX=1, to test that path on any GPU). Returns the index
// into kernel_images() or -1 with the reason in *problem.
int choose_image(int major, int minor, int driver_version, std::string* problem);

// The GPUs the driver sees and whether these kernels can run on each: loads
// libcuda and calls cuInit, but creates no context. Never throws.
struct GpuDeviceReport {
  int index = 0;
  std::string name;
  int major = 0;
  int minor = 0;
  std::string image;    // e.g. "sm_80 cubin", "compute_90 PTX"; "" when none fits
  std::string problem;  // "" when the kernels can run here
};
struct GpuReport {
  bool driver_loaded = false;
  int driver_version = 0;  // 12050 for CUDA 12.5
  std::string problem;     // why no device could be listed ("" otherwise)
  std::vector<GpuDeviceReport> devices;
};
GpuReport probe_gpus();

// Number of CUDA devices; 0 with the reason in *status when there is no driver
// or no device (never crashes).
int device_count(GpuStatus* status);

// ---------------------------------------------------------------- job makers
// Each fills a job and returns "" or what is wrong with the arguments.

template <typename T>
inline bool aligned_for_quads(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(Quad<T>) == 0;
}

// Fills a forward job; returns "" or what is wrong.
template <typename T>
std::string make_masked_rmse_job(const T* predictions, const T* targets, int64_t n, bool squared,
                                 T* loss, T* sum_sq, T* count, void* workspace,
                                 int64_t workspace_bytes, MaskedRmseJob<T>* job) {
  if (n < 0) return "the number of elements must be >= 0, got " + std::to_string(n);
  if (n > 0 && (predictions == nullptr || targets == nullptr)) {
    return "predictions and targets must not be null";
  }
  if (loss == nullptr || sum_sq == nullptr || count == nullptr) {
    return "loss, sum_sq and count must not be null";
  }
  const int64_t needed = masked_rmse_gpu_workspace_bytes(n);
  if (workspace_bytes < needed) {
    return "the masked RMSE workspace needs " + std::to_string(needed) + " bytes for " +
           std::to_string(n) + " elements, got " + std::to_string(workspace_bytes);
  }
  if (needed > 0 && (workspace == nullptr ||
                     reinterpret_cast<uintptr_t>(workspace) % alignof(MaskedRmsePartial) != 0)) {
    return "the masked RMSE workspace must be a non-null pointer aligned to " +
           std::to_string(alignof(MaskedRmsePartial)) + " bytes";
  }
  *job = MaskedRmseJob<T>{};
  job->predictions = predictions;
  job->targets = targets;
  job->n = n;
  job->squared = squared;
  job->loss = loss;
  job->sum_sq = sum_sq;
  job->count = count;
  job->partials = static_cast<MaskedRmsePartial*>(workspace);
  job->num_blocks = masked_rmse_gpu_blocks(n);
  return "";
}

template <typename T>
std::string make_masked_rmse_grad_job(const T* predictions, const T* targets, int64_t n,
                                      const T* sum_sq, const T* count, const T* grad_loss,
                                      const T* grad_sum_sq, bool squared, T* grad_predictions,
                                      T* grad_targets, MaskedRmseGradJob<T>* job) {
  if (n < 0) return "the number of elements must be >= 0, got " + std::to_string(n);
  if (n > 0 && (predictions == nullptr || targets == nullptr)) {
    return "predictions and targets must not be null";
  }
  if (sum_sq == nullptr || count == nullptr) return "sum_sq and count must not be null";
  *job = MaskedRmseGradJob<T>{};
  job->predictions = predictions;
  job->targets = targets;
  job->n = n;
  job->sum_sq = sum_sq;
  job->count = count;
  job->grad_loss = grad_loss;
  job->grad_sum_sq = grad_sum_sq;
  job->squared = squared;
  job->grad_predictions = grad_predictions;
  job->grad_targets = grad_targets;
  return "";
}

// How a job decides which images to flip.
struct FlipSpec {
  const bool* given = nullptr;  // one decision per image, or
  bool seeded = false;          // drawn from (seed0, seed1) with `probability`
  int64_t seed0 = 0;
  int64_t seed1 = 0;
  double probability = 0.5;
  bool* flipped = nullptr;  // where seeded decisions are written (may be null)
};

struct KeypointSpec {
  KeypointType type = KeypointType::kNone;
  const void* in = nullptr;
  void* out = nullptr;
  int64_t num_points = 0;
  const int32_t* partner = nullptr;  // host array of num_points (from flip_partners)
  double x_offset = 0.0;             // W (or W - 1) for a flip, 0 for its gradient
};

// The limits every GPU image kernel shares: one grid row per image, int32
// indices within an image. Empty string when the shape fits.
inline std::string check_gpu_image_shape(const ImageShape& shape) {
  if (shape.batch < 0 || shape.height < 0 || shape.width < 0 || shape.channels < 0) {
    return "image dimensions must be >= 0";
  }
  if (shape.batch > 0x7fffffff) {
    return "GPU image kernels take at most 2^31 - 1 images per call, got " +
           std::to_string(shape.batch);
  }
  if (shape.image_size() > kMaxImageValues) {
    return "GPU image kernels take images of at most " + std::to_string(kMaxImageValues) +
           " values, got " + std::to_string(shape.image_size());
  }
  return "";
}

// Fills an image job; returns "" or what is wrong. `normalize` null means a
// plain copy or mirror (In == Out). force_scalar skips the vector path (tests).
template <typename In, typename Out>
std::string make_image_job(const In* in, Out* out, const ImageShape& shape,
                           const NormalizeParams* normalize, const FlipSpec& flip,
                           const KeypointSpec& keypoints, bool force_scalar,
                           ImageJob<In, Out>* job) {
  const std::string bad_shape = check_gpu_image_shape(shape);
  if (!bad_shape.empty()) return bad_shape;
  if (normalize == nullptr && !IsSame<In, Out>::value) {
    return "a flip without normalization keeps the image dtype";
  }
  if (shape.size() > 0 && (in == nullptr || out == nullptr)) {
    return "images and the output must not be null";
  }
  if (keypoints.num_points < 0 || keypoints.num_points > kMaxFlipPoints) {
    return "GPU flips take at most " + std::to_string(kMaxFlipPoints) +
           " keypoints per sample, got " + std::to_string(keypoints.num_points);
  }
  if (keypoints.type != KeypointType::kNone && shape.batch > 0 && keypoints.num_points > 0 &&
      (keypoints.in == nullptr || keypoints.out == nullptr)) {
    return "keypoints and their output must not be null";
  }
  *job = ImageJob<In, Out>{};
  job->in = in;
  job->out = out;
  job->batch = shape.batch;
  // With pixels, each factor is at most the image size, so all fit in 32 bits.
  const bool pixels = shape.image_size() > 0;
  job->width = static_cast<int32_t>(pixels ? shape.width : 0);
  job->channels = static_cast<int32_t>(pixels ? shape.channels : 1);
  job->row_size = static_cast<int32_t>(pixels ? shape.row_size() : 0);
  job->image_size = static_cast<int32_t>(shape.image_size());
  job->vector_path = !force_scalar && job->image_size % 4 == 0 && job->row_size % 4 == 0 &&
                     aligned_for_quads(in) && aligned_for_quads(out);
  if (normalize != nullptr) {
    job->normalize = true;
    job->standardize = normalize->mode == NormalizeMode::kStandardize;
    if (!job->standardize) {
      const ImageAffine affine = constant_affine(*normalize);
      job->offset = affine.offset;
      job->factor = affine.factor;
    }
  }
  job->given = flip.given;
  job->seeded = flip.given == nullptr && flip.seeded;
  if (job->seeded) {
    job->key = flip_seed_key(flip.seed0, flip.seed1);
    job->probability = flip.probability;
    job->flipped = flip.flipped;
  }
  if (keypoints.type != KeypointType::kNone && keypoints.num_points > 0) {
    job->keypoint_type = keypoints.type;
    job->keypoints = keypoints.in;
    job->out_keypoints = keypoints.out;
    job->num_points = static_cast<int32_t>(keypoints.num_points);
    job->x_offset = keypoints.x_offset;
    for (int64_t k = 0; k < keypoints.num_points; ++k) {
      job->partner[k] =
          static_cast<int16_t>(keypoints.partner != nullptr ? keypoints.partner[k] : k);
    }
  }
  return "";
}

template <typename In, typename Out>
std::string make_normalize_grad_job(const Out* grad, const In* images, In* out,
                                    const ImageShape& shape, const NormalizeParams& params,
                                    bool force_scalar, NormalizeGradJob<In, Out>* job) {
  const std::string bad_shape = check_gpu_image_shape(shape);
  if (!bad_shape.empty()) return bad_shape;
  if (shape.size() > 0 && (grad == nullptr || images == nullptr || out == nullptr)) {
    return "grad, images and the output must not be null";
  }
  *job = NormalizeGradJob<In, Out>{};
  job->grad = grad;
  job->images = images;
  job->out = out;
  job->batch = shape.batch;
  job->image_size = static_cast<int32_t>(shape.image_size());
  job->vector_path = !force_scalar && job->image_size % 4 == 0 && aligned_for_quads(grad) &&
                     aligned_for_quads(images) && aligned_for_quads(out);
  job->standardize = params.mode == NormalizeMode::kStandardize;
  if (!job->standardize) job->factor = constant_affine(params).factor;
  return "";
}

inline std::string make_decisions_job(int64_t seed0, int64_t seed1, int64_t batch,
                                      double probability, bool* out, DecisionsJob* job) {
  if (batch < 0) return "batch must be >= 0, got " + std::to_string(batch);
  if (!(probability >= 0.0 && probability <= 1.0)) {
    return "probability must be in [0, 1], got " + std::to_string(probability);
  }
  if (batch > 0 && out == nullptr) return "the output must not be null";
  *job = DecisionsJob{flip_seed_key(seed0, seed1), probability, batch, out};
  return "";
}

// ---------------------------------------------------------------- launchers
// Each enqueues its job on `stream` (a CUstream; null is the calling thread's
// current context's default stream) and returns at once.

template <typename T>
GpuStatus launch_masked_rmse(const MaskedRmseJob<T>& job, GpuStream stream);
template <typename T>
GpuStatus launch_masked_rmse_grad(const MaskedRmseGradJob<T>& job, GpuStream stream);
template <typename In, typename Out>
GpuStatus launch_image_job(const ImageJob<In, Out>& job, GpuStream stream);
template <typename In, typename Out>
GpuStatus launch_normalize_grad_job(const NormalizeGradJob<In, Out>& job, GpuStream stream);
GpuStatus launch_decisions_job(const DecisionsJob& job, GpuStream stream);

// ---------------------------------------------------------------- emulation
// The same bodies, the same launch geometry, on the CPU over host pointers
// (gpu_emulation.cc): the test suite's view of the GPU path on any machine.

template <typename T>
void emulate_masked_rmse(const MaskedRmseJob<T>& job);
template <typename T>
void emulate_masked_rmse_grad(const MaskedRmseGradJob<T>& job);
template <typename In, typename Out>
void emulate_image_job(const ImageJob<In, Out>& job);
template <typename In, typename Out>
void emulate_normalize_grad_job(const NormalizeGradJob<In, Out>& job);
void emulate_decisions_job(const DecisionsJob& job);

}  // namespace gpu
}  // namespace fkd
