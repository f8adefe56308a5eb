// The image kernel for floating input (plain flip and normalization).
#include "kernels/image_kernels.cuh"

namespace fkd {
namespace gpu {

template GpuStatus launch_image_job<float, float>(const ImageJob<float, float>&, GpuStream);
template GpuStatus launch_image_job<float, double>(const ImageJob<float, double>&, GpuStream);
template GpuStatus launch_image_job<double, float>(const ImageJob<double, float>&, GpuStream);
template GpuStatus launch_image_job<double, double>(const ImageJob<double, double>&, GpuStream);

}  // namespace gpu
}  // namespace fkd
