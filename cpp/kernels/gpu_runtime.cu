// The CUDA runtime queries the faces need: error names and the device count.
#include <cuda_runtime.h>

#include "kernels/gpu_common.h"

namespace fkd {

const char* gpu_error_name(GpuStatus status) {
  return cudaGetErrorName(static_cast<cudaError_t>(status.code));
}

const char* gpu_error_string(GpuStatus status) {
  return cudaGetErrorString(static_cast<cudaError_t>(status.code));
}

int gpu_device_count(GpuStatus* status) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (status != nullptr) status->code = static_cast<int>(error);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not sticky: leave nothing for the next launch check to find
    return 0;
  }
  return count;
}

}  // namespace fkd
