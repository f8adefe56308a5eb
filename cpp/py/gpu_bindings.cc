// The GPU kernels by raw pointer, for tests and benchmarks without TensorFlow.
//
// Two submodules of _native take the same arguments: `cuda` (built with the CUDA
// kernels) launches them on device pointers, e.g. CuPy's `a.data.ptr`, on the
// given stream handle (`cupy.cuda.get_current_stream().ptr`; 0 is the legacy
// default stream); `gpu_emulation` (always built) runs the same kernel bodies on
// host pointers (`a.ctypes.data`). Outputs must not overlap inputs. Launches are
// asynchronous: a CUDA error that happens while a kernel runs surfaces at the
// next synchronization, a launch error as RuntimeError here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/flip.h"
#include "kernels/gpu_common.h"
#include "kernels/image_gpu.h"
#include "kernels/masked_rmse_gpu.h"
#include "kernels/normalize.h"

namespace py = pybind11;

namespace fkd {
namespace py_face {
namespace {

using gpu::FlipSpec;
using gpu::ImageJob;
using gpu::KeypointSpec;
using gpu::KeypointType;
using gpu::MaskedRmseGradJob;
using gpu::MaskedRmseJob;
using gpu::NormalizeGradJob;

[[noreturn]] void fail(const std::string& message) { throw py::value_error(message); }

void require(const std::string& problem) {
  if (!problem.empty()) fail(problem);
}

template <typename T>
T* as_ptr(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

GpuStream as_stream(uintptr_t handle) { return reinterpret_cast<GpuStream>(handle); }

// Runs jobs on the CPU over host pointers.
struct Emulation {
  template <typename T>
  static GpuStatus run(const MaskedRmseJob<T>& job, GpuStream) {
    gpu::emulate_masked_rmse(job);
    return {};
  }
  template <typename T>
  static GpuStatus run(const MaskedRmseGradJob<T>& job, GpuStream) {
    gpu::emulate_masked_rmse_grad(job);
    return {};
  }
  template <typename In, typename Out>
  static GpuStatus run(const ImageJob<In, Out>& job, GpuStream) {
    gpu::emulate_image_job(job);
    return {};
  }
  template <typename In, typename Out>
  static GpuStatus run(const NormalizeGradJob<In, Out>& job, GpuStream) {
    gpu::emulate_normalize_grad_job(job);
    return {};
  }
  static GpuStatus run(const gpu::DecisionsJob& job, GpuStream) {
    gpu::emulate_decisions_job(job);
    return {};
  }
};

#if defined(FKD_OPS_WITH_CUDA)
// Launches jobs on the GPU over device pointers.
struct Cuda {
  template <typename T>
  static GpuStatus run(const MaskedRmseJob<T>& job, GpuStream stream) {
    return gpu::launch_masked_rmse(job, stream);
  }
  template <typename T>
  static GpuStatus run(const MaskedRmseGradJob<T>& job, GpuStream stream) {
    return gpu::launch_masked_rmse_grad(job, stream);
  }
  template <typename In, typename Out>
  static GpuStatus run(const ImageJob<In, Out>& job, GpuStream stream) {
    return gpu::launch_image_job(job, stream);
  }
  template <typename In, typename Out>
  static GpuStatus run(const NormalizeGradJob<In, Out>& job, GpuStream stream) {
    return gpu::launch_normalize_grad_job(job, stream);
  }
  static GpuStatus run(const gpu::DecisionsJob& job, GpuStream stream) {
    return gpu::launch_decisions_job(job, stream);
  }
};
#endif

template <typename Runner, typename Job>
void run(const Job& job, uintptr_t stream, const char* what) {
  GpuStatus status;
  {
    py::gil_scoped_release release;
    status = Runner::run(job, as_stream(stream));
  }
  if (!status.ok()) {
#if defined(FKD_OPS_WITH_CUDA)
    throw std::runtime_error(std::string(what) + ": CUDA error " + gpu_error_name(status) + ": " +
                             gpu_error_string(status));
#else
    // Only the CUDA runner fails with a status; CUDA's error names are not built in here.
    throw std::runtime_error(std::string(what) + ": failed with status " +
                             std::to_string(status.code));
#endif
  }
}

enum class Dtype { kUint8, kFloat32, kFloat64 };

Dtype parse_dtype(const std::string& name, const char* argument) {
  if (name == "uint8") return Dtype::kUint8;
  if (name == "float32") return Dtype::kFloat32;
  if (name == "float64") return Dtype::kFloat64;
  fail(std::string(argument) + " must be 'uint8', 'float32' or 'float64', got '" + name + "'");
}

Dtype parse_float_dtype(const std::string& name, const char* argument) {
  const Dtype d = parse_dtype(name, argument);
  if (d == Dtype::kUint8)
    fail(std::string(argument) + " must be 'float32' or 'float64', got 'uint8'");
  return d;
}

void require_size(int64_t n, const char* what) {
  if (n < 0) fail(std::string(what) + " must be >= 0, got " + std::to_string(n));
}

ImageShape parse_shape(const std::tuple<int64_t, int64_t, int64_t, int64_t>& shape) {
  ImageShape s;
  std::tie(s.batch, s.height, s.width, s.channels) = shape;
  if (s.batch < 0 || s.height < 0 || s.width < 0 || s.channels < 0) {
    fail("shape (batch, height, width, channels) must hold sizes >= 0, got (" +
         std::to_string(s.batch) + ", " + std::to_string(s.height) + ", " +
         std::to_string(s.width) + ", " + std::to_string(s.channels) + ")");
  }
  return s;
}

NormalizeParams parse_normalize(const std::string& mode, double scale, double mean, double stddev) {
  NormalizeParams p;
  const std::string bad = make_normalize_params(mode, scale, mean, stddev, &p);
  if (!bad.empty()) fail(bad);
  return p;
}

// ------------------------------------------------------------------ masked RMSE

template <typename Runner>
void masked_rmse(const std::string& dtype, uintptr_t predictions, uintptr_t targets, int64_t n,
                 uintptr_t loss, uintptr_t sum_sq, uintptr_t count, uintptr_t workspace,
                 int64_t workspace_bytes, bool squared, uintptr_t stream) {
  require_size(n, "n");
  auto go = [&](auto zero) {
    using T = decltype(zero);
    MaskedRmseJob<T> job;
    require(gpu::make_masked_rmse_job(as_ptr<const T>(predictions), as_ptr<const T>(targets), n,
                                      squared, as_ptr<T>(loss), as_ptr<T>(sum_sq), as_ptr<T>(count),
                                      as_ptr<void>(workspace), workspace_bytes, &job));
    run<Runner>(job, stream, "masked_rmse");
  };
  if (parse_float_dtype(dtype, "dtype") == Dtype::kFloat32) {
    go(0.0f);
  } else {
    go(0.0);
  }
}

template <typename Runner>
void masked_rmse_grad(const std::string& dtype, uintptr_t predictions, uintptr_t targets, int64_t n,
                      uintptr_t sum_sq, uintptr_t count, uintptr_t grad_loss, uintptr_t grad_sum_sq,
                      uintptr_t grad_predictions, uintptr_t grad_targets, bool squared,
                      uintptr_t stream) {
  require_size(n, "n");
  auto go = [&](auto zero) {
    using T = decltype(zero);
    MaskedRmseGradJob<T> job;
    require(gpu::make_masked_rmse_grad_job(
        as_ptr<const T>(predictions), as_ptr<const T>(targets), n, as_ptr<const T>(sum_sq),
        as_ptr<const T>(count), as_ptr<const T>(grad_loss), as_ptr<const T>(grad_sum_sq), squared,
        as_ptr<T>(grad_predictions), as_ptr<T>(grad_targets), &job));
    run<Runner>(job, stream, "masked_rmse_grad");
  };
  if (parse_float_dtype(dtype, "dtype") == Dtype::kFloat32) {
    go(0.0f);
  } else {
    go(0.0);
  }
}

// ------------------------------------------------------------------ images

// Calls fn(In{}, Out{}) with the C++ types of an (input, output) dtype pair.
template <typename Fn>
void dispatch_image_types(Dtype in, Dtype out, Fn&& fn) {
  auto with_out = [&](auto in_zero) {
    switch (out) {
      case Dtype::kUint8:
        if constexpr (std::is_same<decltype(in_zero), uint8_t>::value) {
          fn(in_zero, uint8_t{});
          return;
        }
        fail("out_dtype uint8 is only for a plain flip of uint8 images");
      case Dtype::kFloat32:
        fn(in_zero, 0.0f);
        return;
      case Dtype::kFloat64:
        fn(in_zero, 0.0);
        return;
    }
  };
  switch (in) {
    case Dtype::kUint8:
      with_out(uint8_t{});
      return;
    case Dtype::kFloat32:
      with_out(0.0f);
      return;
    case Dtype::kFloat64:
      with_out(0.0);
      return;
  }
}

template <typename Runner>
void images(const std::string& in_dtype, const std::string& out_dtype, uintptr_t images,
            uintptr_t out, const std::tuple<int64_t, int64_t, int64_t, int64_t>& shape_tuple,
            bool normalize, const std::string& mode, double scale, double mean, double stddev,
            const std::string& keypoint_dtype, uintptr_t keypoints, uintptr_t out_keypoints,
            int64_t num_points, const std::vector<int64_t>& pairs, double x_offset, uintptr_t flip,
            bool seeded, int64_t seed0, int64_t seed1, double probability, uintptr_t flipped,
            bool force_scalar, uintptr_t stream) {
  const ImageShape shape = parse_shape(shape_tuple);
  const Dtype in = parse_dtype(in_dtype, "in_dtype");
  const Dtype outd = parse_dtype(out_dtype, "out_dtype");
  if (!normalize && in != outd) {
    fail("a flip without normalization keeps the dtype: in_dtype '" + in_dtype +
         "' and out_dtype '" + out_dtype + "' differ");
  }
  NormalizeParams params;
  if (normalize) params = parse_normalize(mode, scale, mean, stddev);
  if (seeded && !(probability >= 0.0 && probability <= 1.0)) {
    fail("probability must be in [0, 1], got " + std::to_string(probability));
  }
  FlipSpec flip_spec;
  flip_spec.given = as_ptr<const bool>(flip);
  flip_spec.seeded = seeded;
  flip_spec.seed0 = seed0;
  flip_spec.seed1 = seed1;
  flip_spec.probability = probability;
  flip_spec.flipped = as_ptr<bool>(flipped);
  if (flip != 0 && seeded) fail("give either flip decisions or a seed, not both");

  KeypointSpec kp;
  std::vector<int32_t> partner;
  if (!keypoint_dtype.empty()) {
    kp.type = parse_float_dtype(keypoint_dtype, "keypoint_dtype") == Dtype::kFloat32
                  ? KeypointType::kFloat
                  : KeypointType::kDouble;
    require_size(num_points, "num_points");
    require(check_flip_pairs(pairs.data(), static_cast<int64_t>(pairs.size()), num_points));
    partner.resize(static_cast<size_t>(num_points));
    flip_partners(pairs.data(), static_cast<int64_t>(pairs.size()), num_points, partner.data());
    kp.in = as_ptr<const void>(keypoints);
    kp.out = as_ptr<void>(out_keypoints);
    kp.num_points = num_points;
    kp.partner = partner.data();
    kp.x_offset = x_offset;
  }
  dispatch_image_types(in, outd, [&](auto in_zero, auto out_zero) {
    using In = decltype(in_zero);
    using Out = decltype(out_zero);
    auto job = std::make_unique<ImageJob<In, Out>>();
    require(gpu::make_image_job(as_ptr<const In>(images), as_ptr<Out>(out), shape,
                                normalize ? &params : nullptr, flip_spec, kp, force_scalar,
                                job.get()));
    run<Runner>(*job, stream, "images");
  });
}

template <typename Runner>
void normalize_images_grad(const std::string& in_dtype, const std::string& out_dtype,
                           uintptr_t grad, uintptr_t images, uintptr_t out,
                           const std::tuple<int64_t, int64_t, int64_t, int64_t>& shape_tuple,
                           const std::string& mode, double scale, double mean, double stddev,
                           bool force_scalar, uintptr_t stream) {
  const ImageShape shape = parse_shape(shape_tuple);
  const Dtype in = parse_float_dtype(in_dtype, "in_dtype");
  const Dtype outd = parse_float_dtype(out_dtype, "out_dtype");
  const NormalizeParams params = parse_normalize(mode, scale, mean, stddev);
  dispatch_image_types(in, outd, [&](auto in_zero, auto out_zero) {
    using In = decltype(in_zero);
    using Out = decltype(out_zero);
    if constexpr (std::is_same<In, uint8_t>::value) {
      fail("normalize_images_grad takes float images");
    } else {
      NormalizeGradJob<In, Out> job;
      require(gpu::make_normalize_grad_job(as_ptr<const Out>(grad), as_ptr<const In>(images),
                                           as_ptr<In>(out), shape, params, force_scalar, &job));
      run<Runner>(job, stream, "normalize_images_grad");
    }
  });
}

template <typename Runner>
void flip_decisions(int64_t seed0, int64_t seed1, int64_t batch, double probability, uintptr_t out,
                    uintptr_t stream) {
  gpu::DecisionsJob job;
  require(gpu::make_decisions_job(seed0, seed1, batch, probability, as_ptr<bool>(out), &job));
  run<Runner>(job, stream, "flip_decisions");
}

template <typename Runner>
void def_pointer_api(py::module_& m) {
  m.attr("max_flip_points") = gpu::kMaxFlipPoints;
  m.def(
      "masked_rmse_workspace_bytes",
      [](int64_t n) {
        require_size(n, "n");
        return gpu::masked_rmse_gpu_workspace_bytes(n);
      },
      py::arg("n"), "Bytes of device workspace masked_rmse needs for n elements.");
  m.def("masked_rmse", &masked_rmse<Runner>, py::arg("dtype"), py::arg("predictions"),
        py::arg("targets"), py::arg("n"), py::arg("loss"), py::arg("sum_sq"), py::arg("count"),
        py::kw_only(), py::arg("workspace") = 0, py::arg("workspace_bytes") = 0,
        py::arg("squared") = false, py::arg("stream") = 0,
        "Writes loss, sum_sq and count (scalars of dtype) for n elements.");
  m.def("masked_rmse_grad", &masked_rmse_grad<Runner>, py::arg("dtype"), py::arg("predictions"),
        py::arg("targets"), py::arg("n"), py::arg("sum_sq"), py::arg("count"), py::kw_only(),
        py::arg("grad_loss") = 0, py::arg("grad_sum_sq") = 0, py::arg("grad_predictions") = 0,
        py::arg("grad_targets") = 0, py::arg("squared") = false, py::arg("stream") = 0,
        "Gradients from the forward's sum_sq and count and the upstream gradients, all "
        "scalars read where they lie (0 = absent: a zero upstream gradient, an unwanted output).");
  m.def("images", &images<Runner>, py::arg("in_dtype"), py::arg("out_dtype"), py::arg("images"),
        py::arg("out"), py::arg("shape"), py::kw_only(), py::arg("normalize") = false,
        py::arg("mode") = "scale", py::arg("scale") = 1.0 / 255.0, py::arg("mean") = 0.0,
        py::arg("stddev") = 1.0, py::arg("keypoint_dtype") = "", py::arg("keypoints") = 0,
        py::arg("out_keypoints") = 0, py::arg("num_points") = 0,
        py::arg("pairs") = std::vector<int64_t>{}, py::arg("x_offset") = 0.0, py::arg("flip") = 0,
        py::arg("seeded") = false, py::arg("seed0") = 0, py::arg("seed1") = 0,
        py::arg("probability") = 0.5, py::arg("flipped") = 0, py::arg("force_scalar") = false,
        py::arg("stream") = 0,
        "One launch over images (batch, height, width, channels): normalization "
        "(normalize=True) or a plain copy, mirrored where flip (bools) or the seed says, "
        "keypoints remapped (x -> x_offset - x, pairs swapped), seeded decisions written "
        "to flipped.");
  m.def("normalize_images_grad", &normalize_images_grad<Runner>, py::arg("in_dtype"),
        py::arg("out_dtype"), py::arg("grad"), py::arg("images"), py::arg("out"), py::arg("shape"),
        py::kw_only(), py::arg("mode") = "scale", py::arg("scale") = 1.0 / 255.0,
        py::arg("mean") = 0.0, py::arg("stddev") = 1.0, py::arg("force_scalar") = false,
        py::arg("stream") = 0,
        "Gradient of normalization for float images (grad has out_dtype, the result in_dtype).");
  m.def("flip_decisions", &flip_decisions<Runner>, py::arg("seed0"), py::arg("seed1"),
        py::arg("batch"), py::arg("probability"), py::arg("out"), py::kw_only(),
        py::arg("stream") = 0, "Seeded flip decisions (bools), as the random flip ops draw them.");
}

}  // namespace

// Registers _native.gpu_emulation, and with CUDA _native.cuda; `cuda_device_count`
// and `built_with_cuda` say what this build and machine offer.
void def_gpu(py::module_& m) {
  py::module_ emulation = m.def_submodule(
      "gpu_emulation", "The GPU kernels' bodies run on the CPU over host pointers (for tests).");
  def_pointer_api<Emulation>(emulation);
#if defined(FKD_OPS_WITH_CUDA)
  m.attr("built_with_cuda") = true;
  py::module_ cuda =
      m.def_submodule("cuda", "The CUDA kernels over device pointers, on a given stream.");
  def_pointer_api<Cuda>(cuda);
  m.def(
      "cuda_device_count",
      [] {
        GpuStatus status;
        return gpu_device_count(&status);
      },
      "Number of CUDA devices visible (0 without a driver or device; never raises).");
#else
  m.attr("built_with_cuda") = false;
  m.def("cuda_device_count", [] { return 0; }, "Number of CUDA devices (this build has no CUDA).");
#endif
}

}  // namespace py_face
}  // namespace fkd
