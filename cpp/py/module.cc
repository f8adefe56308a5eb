// The pybind11 face: numpy bindings of the same kernels the TensorFlow ops run.
// It builds without TensorFlow (FKD_OPS_TF=OFF), so the kernels can be exercised
// where TensorFlow is absent (the GPU test machine). Inputs are validated here
// with the same rules as the ops; errors are ValueError naming the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/flip.h"
#include "kernels/masked_rmse.h"
#include "kernels/normalize.h"
#include "py/kaggle_csv_bindings.h"

namespace py = pybind11;

namespace fkd {
namespace py_face {
namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    if (i + 1 < a.ndim() || a.ndim() == 1) s += a.ndim() == 1 ? "," : ", ";
  }
  return s + ")";
}

[[noreturn]] void fail(const std::string& message) { throw py::value_error(message); }

// ------------------------------------------------------------------ masked RMSE

void check_same_shape(const py::array& predictions, const py::array& targets) {
  if (predictions.ndim() != targets.ndim() ||
      !std::equal(predictions.shape(), predictions.shape() + predictions.ndim(), targets.shape())) {
    fail("predictions and targets must have the same shape, got predictions " +
         shape_str(predictions) + " and targets " + shape_str(targets));
  }
}

template <typename T>
py::tuple masked_rmse(CArray<T> predictions, CArray<T> targets, bool squared) {
  if (predictions.ndim() < 1)
    fail("predictions must have rank >= 1, got shape " + shape_str(predictions));
  check_same_shape(predictions, targets);
  const int64_t n = predictions.size();
  const int64_t blocks = masked_rmse_num_blocks(n);
  std::vector<double> sums(blocks);
  std::vector<int64_t> counts(blocks);
  MaskedRmseTotals totals;
  {
    py::gil_scoped_release release;
    masked_rmse_blocks(predictions.data(), targets.data(), n, 0, blocks, sums.data(),
                       counts.data());
    totals = masked_rmse_combine(sums.data(), counts.data(), blocks, squared);
  }
  return py::make_tuple(T(totals.loss), T(totals.sum_sq), T(totals.count));
}

// The per-block partial sums themselves, in double: what tests compare bit for
// bit with a model of the summation order (the op's float32 outputs would hide
// a difference in the last bits).
template <typename T>
py::tuple masked_rmse_block_sums(CArray<T> predictions, CArray<T> targets) {
  check_same_shape(predictions, targets);
  const int64_t n = predictions.size();
  const int64_t blocks = masked_rmse_num_blocks(n);
  py::array_t<double> sums(blocks);
  py::array_t<int64_t> counts(blocks);
  double* s = sums.mutable_data();
  int64_t* c = counts.mutable_data();
  {
    py::gil_scoped_release release;
    masked_rmse_blocks(predictions.data(), targets.data(), n, 0, blocks, s, c);
  }
  return py::make_tuple(sums, counts);
}

template <typename T>
py::tuple masked_rmse_grad(CArray<T> predictions, CArray<T> targets, double sum_sq, double count,
                           double grad_loss, double grad_sum_sq, bool squared) {
  check_same_shape(predictions, targets);
  py::array_t<T> gp(
      std::vector<py::ssize_t>(predictions.shape(), predictions.shape() + predictions.ndim()));
  py::array_t<T> gt(std::vector<py::ssize_t>(targets.shape(), targets.shape() + targets.ndim()));
  const T coefficient =
      static_cast<T>(masked_rmse_grad_coefficient(sum_sq, count, grad_loss, grad_sum_sq, squared));
  {
    py::gil_scoped_release release;
    ::fkd::masked_rmse_grad(predictions.data(), targets.data(), coefficient, 0, predictions.size(),
                            gp.mutable_data(), gt.mutable_data());
  }
  return py::make_tuple(gp, gt);
}

// ------------------------------------------------------------------ images

ImageShape image_shape_of(const py::array& images, const char* name) {
  if (images.ndim() != 3 && images.ndim() != 4) {
    fail(std::string(name) +
         " must have rank 3 [batch, height, width] or 4 [batch, height, width, channels], got "
         "shape " +
         shape_str(images));
  }
  ImageShape s;
  s.batch = images.shape(0);
  s.height = images.shape(1);
  s.width = images.shape(2);
  s.channels = images.ndim() == 4 ? images.shape(3) : 1;
  return s;
}

NormalizeParams normalize_params(const std::string& mode, double scale, double mean,
                                 double stddev) {
  NormalizeParams p;
  const std::string bad = make_normalize_params(mode, scale, mean, stddev, &p);
  if (!bad.empty()) fail(bad);
  return p;
}

std::vector<py::ssize_t> shape_vec(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// Optional per-sample decisions: None means no sample is flipped.
std::vector<uint8_t> decisions_of(const py::object& flip, int64_t batch) {
  std::vector<uint8_t> out(static_cast<size_t>(batch), 0);
  if (flip.is_none()) return out;
  auto f = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(flip);
  if (!f || f.ndim() != 1 || f.shape(0) != batch) {
    fail("flip must have shape (" + std::to_string(batch) + ",) (one decision per sample)");
  }
  for (int64_t i = 0; i < batch; ++i) out[i] = f.data()[i];
  return out;
}

template <typename In, typename Out>
py::array_t<Out> normalize_images(CArray<In> images, const std::string& mode, double scale,
                                  double mean, double stddev, const py::object& flip) {
  const ImageShape shape = image_shape_of(images, "images");
  const NormalizeParams params = normalize_params(mode, scale, mean, stddev);
  const std::vector<uint8_t> decisions = decisions_of(flip, shape.batch);
  py::array_t<Out> out(shape_vec(images));
  {
    py::gil_scoped_release release;
    std::vector<ImageAffine> per_image(shape.batch);
    normalize_affine_params(images.data(), shape, params, 0, shape.batch, per_image.data());
    normalize_rows(images.data(), out.mutable_data(), shape, per_image.data(),
                   reinterpret_cast<const bool*>(decisions.data()), 0, shape.rows());
  }
  return out;
}

template <typename In, typename Out>
py::array_t<In> normalize_images_grad(CArray<Out> grad, CArray<In> images, const std::string& mode,
                                      double scale, double mean, double stddev) {
  const ImageShape shape = image_shape_of(images, "images");
  if (shape_vec(grad) != shape_vec(images)) {
    fail("grad and images must have the same shape, got " + shape_str(grad) + " and " +
         shape_str(images));
  }
  const NormalizeParams params = normalize_params(mode, scale, mean, stddev);
  py::array_t<In> out(shape_vec(images));
  {
    py::gil_scoped_release release;
    normalize_grad(grad.data(), images.data(), shape, params, 0, shape.batch, out.mutable_data());
  }
  return out;
}

// ------------------------------------------------------------------ flip

// The partner table, for a batch that has samples: an empty batch may declare
// any number of columns (a (0, 2**38) array holds nothing) and needs none.
std::vector<int32_t> partners(const std::vector<int64_t>& pairs, int64_t num_points,
                              int64_t batch) {
  const std::string bad = check_flip_pairs(pairs.data(), pairs.size(), num_points);
  if (!bad.empty()) fail(bad);
  if (batch == 0) return {};
  std::vector<int32_t> partner(static_cast<size_t>(num_points));
  flip_partners(pairs.data(), pairs.size(), num_points, partner.data());
  return partner;
}

template <typename T, typename K>
py::tuple flip_horizontal(CArray<T> images, CArray<K> keypoints, py::object flip,
                          const std::vector<int64_t>& pairs, double x_offset) {
  const ImageShape shape = image_shape_of(images, "images");
  if (keypoints.ndim() != 2 || keypoints.shape(1) % 2 != 0) {
    fail("keypoints must have shape [batch, 2 * points], got shape " + shape_str(keypoints));
  }
  if (keypoints.shape(0) != shape.batch) {
    fail("images and keypoints must have the same batch size, got images " + shape_str(images) +
         " and keypoints " + shape_str(keypoints));
  }
  const int64_t num_points = keypoints.shape(1) / 2;
  const std::vector<int32_t> partner = partners(pairs, num_points, shape.batch);
  const std::vector<uint8_t> decisions = decisions_of(flip, shape.batch);
  const bool* f = reinterpret_cast<const bool*>(decisions.data());
  py::array_t<T> out_images(shape_vec(images));
  py::array_t<K> out_keypoints(shape_vec(keypoints));
  {
    py::gil_scoped_release release;
    flip_rows(images.data(), out_images.mutable_data(), shape, f, 0, shape.rows());
    flip_keypoints(keypoints.data(), out_keypoints.mutable_data(), num_points, f, partner.data(),
                   static_cast<K>(x_offset), 0, shape.batch);
  }
  return py::make_tuple(out_images, out_keypoints);
}

py::array_t<bool> flip_decisions_np(int64_t seed0, int64_t seed1, int64_t batch,
                                    double probability) {
  if (batch < 0) fail("batch must be >= 0, got " + std::to_string(batch));
  if (!(probability >= 0.0 && probability <= 1.0)) {
    fail("probability must be in [0, 1], got " + std::to_string(probability));
  }
  py::array_t<bool> out(batch);
  flip_decisions(flip_seed_key(seed0, seed1), probability, 0, batch, out.mutable_data());
  return out;
}

template <typename T>
void def_masked_rmse(py::module_& m) {
  m.def("masked_rmse", &masked_rmse<T>, py::arg("predictions").noconvert(),
        py::arg("targets").noconvert(), py::arg("squared") = false);
  m.def("masked_rmse_grad", &masked_rmse_grad<T>, py::arg("predictions").noconvert(),
        py::arg("targets").noconvert(), py::arg("sum_sq"), py::arg("count"), py::arg("grad_loss"),
        py::arg("grad_sum_sq"), py::arg("squared") = false);
  m.def("masked_rmse_block_sums", &masked_rmse_block_sums<T>, py::arg("predictions").noconvert(),
        py::arg("targets").noconvert());
}

}  // namespace
}  // namespace py_face
}  // namespace fkd

namespace fkd {
namespace py_face {
// _native.gpu_emulation and, when built with CUDA, _native.cuda (gpu_bindings.cc).
void def_gpu(py::module_& m);
}  // namespace py_face
}  // namespace fkd

PYBIND11_MODULE(_native, m) {
  using namespace fkd::py_face;
  m.doc() = "fkd_ops native kernels on numpy arrays (no TensorFlow needed)";
  register_kaggle_csv(m);
  def_masked_rmse<float>(m);
  def_masked_rmse<double>(m);

  // normalize_images(images, out_dtype, mode, scale, mean, stddev, flip=None)
  m.def(
      "normalize_images",
      [](py::array images, py::dtype out_dtype, const std::string& mode, double scale, double mean,
         double stddev, py::object flip) -> py::array {
        const bool f64 = out_dtype.is(py::dtype::of<double>());
        if (!f64 && !out_dtype.is(py::dtype::of<float>()))
          fail("out_dtype must be float32 or float64");
        const py::dtype in = images.dtype();
        if (in.is(py::dtype::of<uint8_t>())) {
          return f64 ? py::array(normalize_images<uint8_t, double>(images, mode, scale, mean,
                                                                   stddev, flip))
                     : py::array(normalize_images<uint8_t, float>(images, mode, scale, mean, stddev,
                                                                  flip));
        }
        if (in.is(py::dtype::of<float>())) {
          return f64 ? py::array(
                           normalize_images<float, double>(images, mode, scale, mean, stddev, flip))
                     : py::array(
                           normalize_images<float, float>(images, mode, scale, mean, stddev, flip));
        }
        if (in.is(py::dtype::of<double>())) {
          return f64 ? py::array(normalize_images<double, double>(images, mode, scale, mean, stddev,
                                                                  flip))
                     : py::array(normalize_images<double, float>(images, mode, scale, mean, stddev,
                                                                 flip));
        }
        fail("images must be uint8, float32 or float64, got " + std::string(py::str(in)));
      },
      py::arg("images"), py::arg("out_dtype"), py::arg("mode") = "scale",
      py::arg("scale") = 1.0 / 255.0, py::arg("mean") = 0.0, py::arg("stddev") = 1.0,
      py::arg("flip") = py::none());

  m.def(
      "normalize_images_grad",
      [](py::array grad, py::array images, const std::string& mode, double scale, double mean,
         double stddev) -> py::array {
        const bool in64 = images.dtype().is(py::dtype::of<double>());
        const bool out64 = grad.dtype().is(py::dtype::of<double>());
        if (!in64 && !images.dtype().is(py::dtype::of<float>()))
          fail("images must be float32 or float64");
        if (!out64 && !grad.dtype().is(py::dtype::of<float>()))
          fail("grad must be float32 or float64");
        if (in64) {
          return out64 ? py::array(normalize_images_grad<double, double>(grad, images, mode, scale,
                                                                         mean, stddev))
                       : py::array(normalize_images_grad<double, float>(grad, images, mode, scale,
                                                                        mean, stddev));
        }
        return out64 ? py::array(normalize_images_grad<float, double>(grad, images, mode, scale,
                                                                      mean, stddev))
                     : py::array(normalize_images_grad<float, float>(grad, images, mode, scale,
                                                                     mean, stddev));
      },
      py::arg("grad"), py::arg("images"), py::arg("mode") = "scale", py::arg("scale") = 1.0 / 255.0,
      py::arg("mean") = 0.0, py::arg("stddev") = 1.0);

  // flip_horizontal(images, keypoints, flip, pairs, x_offset): x -> x_offset - x.
  m.def(
      "flip_horizontal",
      [](py::array images, py::array keypoints, py::object flip, const std::vector<int64_t>& pairs,
         double x_offset) -> py::tuple {
        const bool k64 = keypoints.dtype().is(py::dtype::of<double>());
        if (!k64 && !keypoints.dtype().is(py::dtype::of<float>()))
          fail("keypoints must be float32 or float64");
        const py::dtype in = images.dtype();
#define FKD_FLIP_CASE(T)                                                              \
  if (in.is(py::dtype::of<T>())) {                                                    \
    return k64 ? flip_horizontal<T, double>(images, keypoints, flip, pairs, x_offset) \
               : flip_horizontal<T, float>(images, keypoints, flip, pairs, x_offset); \
  }
        FKD_FLIP_CASE(uint8_t)
        FKD_FLIP_CASE(float)
        FKD_FLIP_CASE(double)
#undef FKD_FLIP_CASE
        fail("images must be uint8, float32 or float64, got " + std::string(py::str(in)));
      },
      py::arg("images"), py::arg("keypoints"), py::arg("flip"), py::arg("pairs"),
      py::arg("x_offset"));

  fkd::py_face::def_gpu(m);

  m.def("masked_rmse_float_path", &fkd::masked_rmse_float_path,
        "The float32 masked RMSE loop this CPU runs: 'avx2' or 'portable' (FKD_OPS_NO_AVX2=1).");

  m.def("flip_decisions", &flip_decisions_np, py::arg("seed0"), py::arg("seed1"), py::arg("batch"),
        py::arg("probability") = 0.5,
        "Stateless flip decisions, identical to those of the random flip ops.");
}
