// The launcher of the embedded GPU kernels, through the CUDA driver API opened at
// run time (see gpu_launch.h), and the typed launchers of each job.
#include "kernels/gpu_launch.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "kernels/gpu_kernel_names.h"

#if defined(FKD_OPS_WITH_GPU)
#include "gpu_job_layout.h"  // generated next to the images by cpp/cmake/compile_gpu_kernels.py
#endif

namespace fkd {
namespace gpu {
namespace {

// ---------------------------------------------------------------- kernel ids

enum KernelId : int {
#define FKD_ID_RMSE(T, tag) \
  kMaskedRmsePartials_##tag, kMaskedRmseFinish_##tag, kMaskedRmseGrad_##tag,
  FKD_GPU_FLOAT_TYPES(FKD_ID_RMSE)
#undef FKD_ID_RMSE
#define FKD_ID_IMAGE(In, Out, a, b) kImage_##a##_##b,
      FKD_GPU_IMAGE_TYPES(FKD_ID_IMAGE)
#undef FKD_ID_IMAGE
#define FKD_ID_GRAD(In, Out, a, b) \
  kNormalizeGradStandardize_##a##_##b, kNormalizeGradAffine_##a##_##b,
          FKD_GPU_GRAD_TYPES(FKD_ID_GRAD)
#undef FKD_ID_GRAD
              kFlipDecisions,
  kKernelCount
};

const char* const kKernelNames[kKernelCount] = {
#define FKD_NAME_RMSE(T, tag) \
  "fkd_masked_rmse_partials_" #tag, "fkd_masked_rmse_finish_" #tag, "fkd_masked_rmse_grad_" #tag,
    FKD_GPU_FLOAT_TYPES(FKD_NAME_RMSE)
#undef FKD_NAME_RMSE
#define FKD_NAME_IMAGE(In, Out, a, b) "fkd_image_" #a "_" #b,
        FKD_GPU_IMAGE_TYPES(FKD_NAME_IMAGE)
#undef FKD_NAME_IMAGE
#define FKD_NAME_GRAD(In, Out, a, b) \
  "fkd_normalize_grad_standardize_" #a "_" #b, "fkd_normalize_grad_affine_" #a "_" #b,
            FKD_GPU_GRAD_TYPES(FKD_NAME_GRAD)
#undef FKD_NAME_GRAD
                "fkd_flip_decisions",
};

template <typename T>
struct RmseKernels;
#define FKD_RMSE_KERNELS(T, tag)                                    \
  template <>                                                       \
  struct RmseKernels<T> {                                           \
    static constexpr KernelId partials = kMaskedRmsePartials_##tag; \
    static constexpr KernelId finish = kMaskedRmseFinish_##tag;     \
    static constexpr KernelId grad = kMaskedRmseGrad_##tag;         \
  };
FKD_GPU_FLOAT_TYPES(FKD_RMSE_KERNELS)
#undef FKD_RMSE_KERNELS

template <typename In, typename Out>
struct ImageKernels;
#define FKD_IMAGE_KERNELS(In, Out, a, b)                \
  template <>                                           \
  struct ImageKernels<In, Out> {                        \
    static constexpr KernelId image = kImage_##a##_##b; \
  };
FKD_GPU_IMAGE_TYPES(FKD_IMAGE_KERNELS)
#undef FKD_IMAGE_KERNELS

template <typename In, typename Out>
struct GradKernels;
#define FKD_GRAD_KERNELS(In, Out, a, b)                                          \
  template <>                                                                    \
  struct GradKernels<In, Out> {                                                  \
    static constexpr KernelId standardize = kNormalizeGradStandardize_##a##_##b; \
    static constexpr KernelId affine = kNormalizeGradAffine_##a##_##b;           \
  };
FKD_GPU_GRAD_TYPES(FKD_GRAD_KERNELS)
#undef FKD_GRAD_KERNELS

#if defined(FKD_OPS_WITH_GPU)
// A job crosses to NVRTC's code as raw bytes: both compilers must lay it out alike.
constexpr unsigned long long kHostJobLayout[] = FKD_GPU_JOB_LAYOUT;
constexpr unsigned long long kNvrtcJobLayout[] = FKD_GPU_NVRTC_JOB_LAYOUT;
constexpr bool SameJobLayout() {
  if (sizeof(kHostJobLayout) != sizeof(kNvrtcJobLayout)) return false;
  for (size_t i = 0; i < sizeof(kHostJobLayout) / sizeof(kHostJobLayout[0]); ++i) {
    if (kHostJobLayout[i] != kNvrtcJobLayout[i]) return false;
  }
  return true;
}
static_assert(SameJobLayout(), "the host compiler and NVRTC lay the GPU jobs out differently");
constexpr bool kBuiltWithGpu = true;
#else
constexpr bool kBuiltWithGpu = false;
#endif

const char kNotBuiltMessage[] =
    "this fkd_ops was built without GPU kernels (FKD_OPS_CUDA=OFF, or no CUDA 12 NVRTC at build "
    "time); rebuild with `pip install nvidia-cuda-nvrtc-cu12` present";

// ---------------------------------------------------------------- the driver
// The few driver API entry points used, declared here so that no CUDA header
// (and no CUDA toolkit) is needed to build.

using CUresult = int;
using CUdevice = int;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;

constexpr CUresult kCudaSuccess = 0;
constexpr CUresult kCudaErrorInvalidContext = 201;
constexpr CUresult kCudaErrorInvalidHandle = 400;
constexpr CUresult kCudaErrorContextIsDestroyed = 709;
constexpr int kAttributeComputeCapabilityMajor = 75;
constexpr int kAttributeComputeCapabilityMinor = 76;
constexpr int kJitErrorLogBuffer = 5;
constexpr int kJitErrorLogBufferSizeBytes = 6;

struct Driver {
  bool ok = false;
  int code = kNoDriver;  // why not ok: kNoDriver, or cuInit's CUresult
  std::string problem;
  int version = 0;

  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int*) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char**) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*cuCtxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxPushCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxPopCurrent)(CUcontext*) = nullptr;
  CUresult (*cuCtxGetDevice)(CUdevice*) = nullptr;
  CUresult (*cuStreamGetCtx)(CUstream, CUcontext*) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule*, const void*, unsigned, int*, void**) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**) = nullptr;

  // "CUDA_ERROR_X (description)" for a driver result.
  std::string describe(CUresult r) const {
    const char* name = nullptr;
    const char* text = nullptr;
    if (cuGetErrorName == nullptr || cuGetErrorName(r, &name) != kCudaSuccess) name = nullptr;
    if (cuGetErrorString == nullptr || cuGetErrorString(r, &text) != kCudaSuccess) text = nullptr;
    std::string out = name ? name : "CUDA error " + std::to_string(r);
    if (text) out += std::string(" (") + text + ")";
    return out;
  }

  GpuStatus error(CUresult r, const std::string& what) const {
    return GpuStatus{r, "fkd_ops: " + what + " failed: " + describe(r)};
  }
};

template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(handle, name));
  return *fn != nullptr;
}

Driver* LoadDriver() {
  auto* d = new Driver;  // lives as long as the process: launches may come from any thread
  const char* path = std::getenv("FKD_OPS_LIBCUDA");  // tests point this at a stub
  if (path == nullptr || *path == '\0') path = "libcuda.so.1";
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    d->problem = std::string("fkd_ops: no CUDA driver: cannot load ") + path + " (" +
                 (why ? why : "not found") + "); install the NVIDIA driver to use the GPU";
    return d;
  }
  bool all = true;
  all &= Resolve(handle, "cuInit", &d->cuInit);
  all &= Resolve(handle, "cuDriverGetVersion", &d->cuDriverGetVersion);
  all &= Resolve(handle, "cuGetErrorName", &d->cuGetErrorName);
  all &= Resolve(handle, "cuGetErrorString", &d->cuGetErrorString);
  all &= Resolve(handle, "cuDeviceGetCount", &d->cuDeviceGetCount);
  all &= Resolve(handle, "cuDeviceGet", &d->cuDeviceGet);
  all &= Resolve(handle, "cuDeviceGetAttribute", &d->cuDeviceGetAttribute);
  all &= Resolve(handle, "cuDeviceGetName", &d->cuDeviceGetName);
  all &= Resolve(handle, "cuDevicePrimaryCtxRetain", &d->cuDevicePrimaryCtxRetain);
  all &= Resolve(handle, "cuCtxGetCurrent", &d->cuCtxGetCurrent);
  all &= Resolve(handle, "cuCtxSetCurrent", &d->cuCtxSetCurrent);
  all &= Resolve(handle, "cuCtxPushCurrent_v2", &d->cuCtxPushCurrent);
  all &= Resolve(handle, "cuCtxPopCurrent_v2", &d->cuCtxPopCurrent);
  all &= Resolve(handle, "cuCtxGetDevice", &d->cuCtxGetDevice);
  all &= Resolve(handle, "cuStreamGetCtx", &d->cuStreamGetCtx);
  all &= Resolve(handle, "cuModuleLoadDataEx", &d->cuModuleLoadDataEx);
  all &= Resolve(handle, "cuModuleGetFunction", &d->cuModuleGetFunction);
  all &= Resolve(handle, "cuLaunchKernel", &d->cuLaunchKernel);
  if (!all) {
    d->problem = std::string("fkd_ops: ") + path +
                 " lacks driver API functions that CUDA 12 has: the NVIDIA driver is too old; "
                 "update it (R525 or newer, as TensorFlow needs)";
    return d;
  }
  if (d->cuDriverGetVersion(&d->version) != kCudaSuccess) d->version = 0;
  const CUresult r = d->cuInit(0);
  if (r != kCudaSuccess) {
    d->code = r;
    d->problem = "fkd_ops: cuInit failed: " + d->describe(r);
    return d;
  }
  d->ok = true;
  d->code = kCudaSuccess;
  return d;
}

const Driver& TheDriver() {
  static const Driver* driver = LoadDriver();  // thread-safe initialization
  return *driver;
}

GpuStatus DriverStatus(const Driver& d) { return GpuStatus{d.code, d.problem}; }

std::string ImageName(const KernelImage& image) {
  return (image.ptx ? "compute_" : "sm_") + std::to_string(image.arch) +
         (image.ptx ? " PTX" : " cubin");
}

std::string ImageList() {
  std::string out;
  for (const KernelImage& image : kernel_images()) {
    out += (out.empty() ? "" : ", ") + ImageName(image);
  }
  return out.empty() ? "none" : out;
}

// 12050 for "12.5".
int VersionNumber(const std::string& version) {
  const size_t dot = version.find('.');
  if (dot == std::string::npos) return 0;
  return 1000 * std::atoi(version.c_str()) + 10 * std::atoi(version.c_str() + dot + 1);
}

std::string VersionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// ---------------------------------------------------------------- modules
// The kernels loaded into one CUDA context.

struct LoadedModule {
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  CUfunction functions[kKernelCount] = {};
  GpuStatus status;  // why loading failed (kept: every launch in this context reports it)
};

// Compute capability of the current context's device.
CUresult CurrentDeviceCapability(const Driver& d, int* major, int* minor) {
  CUdevice device = 0;
  CUresult r = d.cuCtxGetDevice(&device);
  if (r == kCudaSuccess)
    r = d.cuDeviceGetAttribute(major, kAttributeComputeCapabilityMajor, device);
  if (r == kCudaSuccess)
    r = d.cuDeviceGetAttribute(minor, kAttributeComputeCapabilityMinor, device);
  return r;
}

// Loads the image that fits into the current context (which is `context`).
void LoadModule(const Driver& d, LoadedModule* m) {
  int major = 0, minor = 0;
  CUresult r = CurrentDeviceCapability(d, &major, &minor);
  if (r != kCudaSuccess) {
    m->status = d.error(r, "reading the GPU's compute capability");
    return;
  }
  std::string problem;
  const int chosen = choose_image(major, minor, d.version, &problem);
  if (chosen < 0) {
    m->status = GpuStatus{kNoImage, problem};
    return;
  }
  const std::vector<KernelImage> images = kernel_images();
  const KernelImage& image = images[static_cast<size_t>(chosen)];
  char log[4096] = {};
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSizeBytes};
  void* values[] = {log, reinterpret_cast<void*>(static_cast<uintptr_t>(sizeof(log)))};
  r = d.cuModuleLoadDataEx(&m->module, image.data, 2, options, values);
  if (r != kCudaSuccess) {
    m->module = nullptr;
    m->status = d.error(r, "loading the " + ImageName(image) +
                               " kernels on a GPU of compute capability " + std::to_string(major) +
                               "." + std::to_string(minor) + " (driver " + VersionText(d.version) +
                               ")" + (log[0] ? std::string(": ") + log : std::string()));
    if (image.ptx) m->status.code = kNoImage;
    return;
  }
  for (int k = 0; k < kKernelCount; ++k) {
    r = d.cuModuleGetFunction(&m->functions[k], m->module, kKernelNames[k]);
    if (r != kCudaSuccess) {
      m->status = d.error(r, std::string("finding kernel ") + kKernelNames[k]);
      return;
    }
  }
}

class ModuleCache {
 public:
  // The module of `context`, loading it on first use; context must be current.
  const LoadedModule* Get(const Driver& d, CUcontext context) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& m : modules_) {
      if (m->context == context) return m.get();
    }
    auto m = std::make_unique<LoadedModule>();
    m->context = context;
    LoadModule(d, m.get());
    modules_.push_back(std::move(m));
    return modules_.back().get();
  }

  // Forgets the module of a context that was destroyed (a new context may reuse its address).
  void Drop(CUcontext context) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = modules_.begin(); it != modules_.end(); ++it) {
      if ((*it)->context == context) {
        // The module died with its context; the record is kept alive (another
        // thread may still read it), just no longer found.
        retired_.push_back(std::move(*it));
        modules_.erase(it);
        return;
      }
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<LoadedModule>> modules_;
  std::vector<std::unique_ptr<LoadedModule>> retired_;
};

ModuleCache& Modules() {
  static ModuleCache* cache = new ModuleCache;
  return *cache;
}

// Makes `context` current for a scope (only when it is not already).
class ScopedContext {
 public:
  ScopedContext(const Driver& d, CUcontext context) : d_(d) {
    CUcontext current = nullptr;
    if (d.cuCtxGetCurrent(&current) == kCudaSuccess && current == context) return;
    result_ = d.cuCtxPushCurrent(context);
    pushed_ = result_ == kCudaSuccess;
  }
  ~ScopedContext() {
    if (pushed_) {
      CUcontext popped = nullptr;
      d_.cuCtxPopCurrent(&popped);
    }
  }
  CUresult result() const { return result_; }

 private:
  const Driver& d_;
  bool pushed_ = false;
  CUresult result_ = kCudaSuccess;
};

bool IsSpecialStream(GpuStream stream) {
  const uintptr_t handle = reinterpret_cast<uintptr_t>(stream);
  return handle == 0 || handle == 1 || handle == 2;  // null, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD
}

// The context a launch on `stream` goes to: the stream's, or for the special
// streams the current one, else device 0's primary context (made current).
CUresult StreamContext(const Driver& d, GpuStream stream, CUcontext* context) {
  CUresult r = d.cuStreamGetCtx(stream, context);
  if (r == kCudaErrorInvalidContext && IsSpecialStream(stream)) {
    CUdevice device = 0;
    r = d.cuDeviceGet(&device, 0);
    if (r == kCudaSuccess) r = d.cuDevicePrimaryCtxRetain(context, device);
    if (r == kCudaSuccess) r = d.cuCtxSetCurrent(*context);
  }
  return r;
}

GpuStatus Launch(KernelId kernel, int64_t grid, int threads, const void* job, GpuStream stream) {
  if (!kBuiltWithGpu) return GpuStatus{kNotBuilt, std::string("fkd_ops: ") + kNotBuiltMessage};
  if (grid <= 0) return GpuStatus{};
  if (grid > 0x7fffffff) {
    return GpuStatus{kBadGeometry, "fkd_ops: " + std::string(kKernelNames[kernel]) + " needs " +
                                       std::to_string(grid) + " blocks, more than CUDA's 2^31 - 1"};
  }
  const Driver& d = TheDriver();
  if (!d.ok) return DriverStatus(d);
  CUcontext context = nullptr;
  CUresult r = StreamContext(d, stream, &context);
  if (r != kCudaSuccess) return d.error(r, "finding the CUDA context of the stream");
  ScopedContext scope(d, context);
  if (scope.result() != kCudaSuccess)
    return d.error(scope.result(), "making the stream's context current");
  void* params[] = {const_cast<void*>(job)};
  for (int attempt = 0;; ++attempt) {
    const LoadedModule* m = Modules().Get(d, context);
    if (!m->status.ok()) return m->status;
    r = d.cuLaunchKernel(m->functions[kernel], static_cast<unsigned>(grid), 1, 1,
                         static_cast<unsigned>(threads), 1, 1, 0, stream, params, nullptr);
    if (r == kCudaSuccess) return GpuStatus{};
    const bool stale = r == kCudaErrorInvalidHandle || r == kCudaErrorContextIsDestroyed;
    if (!stale || attempt > 0) break;
    Modules().Drop(context);  // a new context at a dead one's address: load again, once
  }
  return d.error(r, std::string("launching ") + kKernelNames[kernel]);
}

}  // namespace

// ---------------------------------------------------------------- what is built

std::vector<KernelImage> kernel_images() {
#if defined(FKD_OPS_WITH_GPU)
  return std::vector<KernelImage>(kKernelImages, kKernelImages + kNumKernelImages);
#else
  return {};
#endif
}

std::string nvrtc_version() {
#if defined(FKD_OPS_WITH_GPU)
  return kNvrtcVersion;
#else
  return "";
#endif
}

std::vector<std::string> kernel_names() { return {kKernelNames, kKernelNames + kKernelCount}; }

int choose_image(int major, int minor, int driver_version, std::string* problem) {
  const std::string gpu =
      "compute capability " + std::to_string(major) + "." + std::to_string(minor);
  if (!kBuiltWithGpu) {
    *problem = std::string("fkd_ops: ") + kNotBuiltMessage;
    return -1;
  }
  if (driver_version > 0 && driver_version < 12000) {
    *problem = "fkd_ops: the NVIDIA driver supports CUDA " + VersionText(driver_version) +
               ", and fkd_ops' GPU kernels (CUDA 12) need a driver for CUDA 12, as TensorFlow "
               "does: update the driver to R525 or newer";
    return -1;
  }
  const std::vector<KernelImage> images = kernel_images();
  // FKD_OPS_GPU_FORCE_PTX=1 skips the cubins, so a GPU that has one can prove
  // the PTX path that newer GPUs take (the device script runs the tests so).
  const char* force_ptx = std::getenv("FKD_OPS_GPU_FORCE_PTX");
  const bool cubins = force_ptx == nullptr || *force_ptx == '\0' || *force_ptx == '0';
  int best = -1;
  for (size_t i = 0; cubins && i < images.size(); ++i) {
    const KernelImage& image = images[i];
    if (!image.ptx && image.arch / 10 == major && image.arch % 10 <= minor &&
        (best < 0 || image.arch > images[static_cast<size_t>(best)].arch)) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) return best;
  for (size_t i = 0; i < images.size(); ++i) {
    const KernelImage& image = images[i];
    if (image.ptx && image.arch <= 10 * major + minor &&
        (best < 0 || image.arch > images[static_cast<size_t>(best)].arch)) {
      best = static_cast<int>(i);
    }
  }
  if (best < 0) {
    *problem = "fkd_ops: no GPU kernels for " + gpu + " in this build (it holds " + ImageList() +
               "); rebuild with FKD_OPS_CUDA_ARCHS=sm_" + std::to_string(major) +
               std::to_string(minor) + " added to the architectures";
    return -1;
  }
  const int needed = VersionNumber(nvrtc_version());
  if (driver_version > 0 && driver_version < needed) {
    *problem = "fkd_ops: a GPU of " + gpu + " runs fkd_ops' kernels from their " +
               ImageName(images[static_cast<size_t>(best)]) + ", which the driver (CUDA " +
               VersionText(driver_version) + ") cannot compile: it needs a driver for CUDA " +
               VersionText(needed) +
               " or newer; update the driver, or rebuild with "
               "FKD_OPS_CUDA_ARCHS=sm_" +
               std::to_string(major) + std::to_string(minor) + " added to the architectures";
    return -1;
  }
  return best;
}

GpuReport probe_gpus() {
  GpuReport report;
  const Driver& d = TheDriver();
  report.driver_version = d.version;
  if (!d.ok) {
    report.driver_loaded = d.cuInit != nullptr;
    report.problem = d.problem;
    return report;
  }
  report.driver_loaded = true;
  int count = 0;
  CUresult r = d.cuDeviceGetCount(&count);
  if (r != kCudaSuccess) {
    report.problem = d.error(r, "cuDeviceGetCount").message;
    return report;
  }
  for (int i = 0; i < count; ++i) {
    GpuDeviceReport dev;
    dev.index = i;
    CUdevice device = 0;
    char name[256] = {};
    r = d.cuDeviceGet(&device, i);
    if (r == kCudaSuccess) r = d.cuDeviceGetName(name, sizeof(name) - 1, device);
    if (r == kCudaSuccess) {
      r = d.cuDeviceGetAttribute(&dev.major, kAttributeComputeCapabilityMajor, device);
    }
    if (r == kCudaSuccess) {
      r = d.cuDeviceGetAttribute(&dev.minor, kAttributeComputeCapabilityMinor, device);
    }
    dev.name = name;
    if (r != kCudaSuccess) {
      dev.problem = d.error(r, "reading GPU " + std::to_string(i)).message;
    } else {
      const int chosen = choose_image(dev.major, dev.minor, d.version, &dev.problem);
      if (chosen >= 0) dev.image = ImageName(kernel_images()[static_cast<size_t>(chosen)]);
    }
    report.devices.push_back(dev);
  }
  return report;
}

int device_count(GpuStatus* status) {
  const Driver& d = TheDriver();
  if (!d.ok) {
    if (status != nullptr) *status = DriverStatus(d);
    return 0;
  }
  int count = 0;
  const CUresult r = d.cuDeviceGetCount(&count);
  if (r != kCudaSuccess) {
    if (status != nullptr) *status = d.error(r, "cuDeviceGetCount");
    return 0;
  }
  if (status != nullptr) *status = GpuStatus{};
  return count;
}

// ---------------------------------------------------------------- launchers

template <typename T>
GpuStatus launch_masked_rmse(const MaskedRmseJob<T>& job, GpuStream stream) {
  GpuStatus s = Launch(RmseKernels<T>::partials, job.num_blocks, kMaskedRmseThreads, &job, stream);
  if (!s.ok() || job.num_blocks == 1) return s;
  return Launch(RmseKernels<T>::finish, 1, kMaskedRmseThreads, &job, stream);
}

template <typename T>
GpuStatus launch_masked_rmse_grad(const MaskedRmseGradJob<T>& job, GpuStream stream) {
  return Launch(RmseKernels<T>::grad, masked_rmse_grad_gpu_blocks(job.n), kMaskedRmseThreads, &job,
                stream);
}

template <typename In, typename Out>
GpuStatus launch_image_job(const ImageJob<In, Out>& job, GpuStream stream) {
  return Launch(ImageKernels<In, Out>::image, job.batch, image_job_threads(job), &job, stream);
}

template <typename In, typename Out>
GpuStatus launch_normalize_grad_job(const NormalizeGradJob<In, Out>& job, GpuStream stream) {
  const KernelId kernel =
      job.standardize ? GradKernels<In, Out>::standardize : GradKernels<In, Out>::affine;
  return Launch(kernel, job.batch, normalize_grad_job_threads(job), &job, stream);
}

GpuStatus launch_decisions_job(const DecisionsJob& job, GpuStream stream) {
  return Launch(kFlipDecisions, decisions_blocks(job.batch), kDecisionThreads, &job, stream);
}

#define FKD_INSTANTIATE_RMSE(T, tag)                                            \
  template GpuStatus launch_masked_rmse<T>(const MaskedRmseJob<T>&, GpuStream); \
  template GpuStatus launch_masked_rmse_grad<T>(const MaskedRmseGradJob<T>&, GpuStream);
FKD_GPU_FLOAT_TYPES(FKD_INSTANTIATE_RMSE)
#undef FKD_INSTANTIATE_RMSE
#define FKD_INSTANTIATE_IMAGE(In, Out, a, b) \
  template GpuStatus launch_image_job<In, Out>(const ImageJob<In, Out>&, GpuStream);
FKD_GPU_IMAGE_TYPES(FKD_INSTANTIATE_IMAGE)
#undef FKD_INSTANTIATE_IMAGE
#define FKD_INSTANTIATE_GRAD(In, Out, a, b)                                               \
  template GpuStatus launch_normalize_grad_job<In, Out>(const NormalizeGradJob<In, Out>&, \
                                                        GpuStream);
FKD_GPU_GRAD_TYPES(FKD_INSTANTIATE_GRAD)
#undef FKD_INSTANTIATE_GRAD

}  // namespace gpu
}  // namespace fkd
