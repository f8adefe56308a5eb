// What every OpKernel<Device, ...> of the TensorFlow face shares: the device
// tags its functors are specialised on, the CUDA stream of a GPU op, statuses
// from the GPU launcher and job makers, and the guard that turns any C++
// exception of a kernel into a status (none may escape into TensorFlow).
//
// The GPU side is plain C++: the stream comes from TF's stream executor and the
// launch goes through kernels/gpu_launch.h (the CUDA driver API opened at run
// time), so no CUDA header is needed and the tensorflow-cpu wheel builds it too.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/gpu_launch.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "xla/stream_executor/stream.h"

namespace fkd {
namespace tf_face {

// Device tags: each op's functor has a CpuDevice and a GpuDevice specialisation.
struct CpuDevice {};
struct GpuDevice {};

// The CUDA stream this op's work goes on.
inline absl::Status GpuStreamOf(::tensorflow::OpKernelContext* ctx, GpuStream* stream) {
  const ::tensorflow::DeviceContext* device_context = ctx->op_device_context();
  if (device_context == nullptr || device_context->stream() == nullptr) {
    return absl::InternalError("fkd_ops: no GPU stream for this op");
  }
  *stream = static_cast<GpuStream>(device_context->stream()->platform_specific_handle().stream);
  if (*stream == nullptr) return absl::InternalError("fkd_ops: the GPU stream has no CUDA handle");
  return absl::OkStatus();
}

// A launcher's status for TensorFlow: a GPU these kernels cannot run on (no
// driver, no image, driver too old) is FailedPrecondition, whose message holds
// the fix; a grid beyond CUDA's limits is InvalidArgument; the driver's errors
// are Internal.
inline absl::Status LaunchStatus(const GpuStatus& status, const std::string& op) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(op, " on the GPU: ", status.message);
  if (gpu::unavailable(status)) return absl::FailedPreconditionError(message);
  if (status.code == gpu::kBadGeometry) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

// A job maker's complaint (sizes beyond what the GPU kernels take).
inline absl::Status JobStatus(const std::string& problem) {
  return problem.empty() ? absl::OkStatus() : absl::InvalidArgumentError(problem);
}

// Runs a kernel's body, turning an exception into the op's status: memory that
// cannot be had is ResourceExhausted, anything else Internal.
template <typename Fn>
void GuardedCompute(::tensorflow::OpKernelContext* ctx, Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    ctx->SetStatus(absl::ResourceExhaustedError(
        absl::StrCat("fkd_ops: ", ctx->op_kernel().name(), ": out of host memory")));
  } catch (const std::exception& e) {
    ctx->SetStatus(
        absl::InternalError(absl::StrCat("fkd_ops: ", ctx->op_kernel().name(), ": ", e.what())));
  } catch (...) {
    ctx->SetStatus(absl::InternalError(
        absl::StrCat("fkd_ops: ", ctx->op_kernel().name(), ": unknown C++ exception")));
  }
}

}  // namespace tf_face
}  // namespace fkd
