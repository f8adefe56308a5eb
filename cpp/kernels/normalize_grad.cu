// The normalization gradient kernel (float images).
#include "kernels/image_kernels.cuh"

namespace fkd {
namespace gpu {

#define FKD_INSTANTIATE_GRAD(In, Out)                                                     \
  template GpuStatus launch_normalize_grad_job<In, Out>(const NormalizeGradJob<In, Out>&, \
                                                        GpuStream);
FKD_INSTANTIATE_GRAD(float, float)
FKD_INSTANTIATE_GRAD(float, double)
FKD_INSTANTIATE_GRAD(double, float)
FKD_INSTANTIATE_GRAD(double, double)
#undef FKD_INSTANTIATE_GRAD

}  // namespace gpu
}  // namespace fkd
