// The pybind11 face of the Kaggle CSV reader: takes any contiguous bytes-like
// object (bytes, mmap, memoryview), releases the GIL while the C++ parser runs,
// and returns numpy arrays, or raises _native.KaggleCsvError (a ValueError)
// whose args are (reason, line, column, field). fkd_ops.kaggle_files adds the
// file name.
#include "py/kaggle_csv_bindings.h"

#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "py/kaggle_csv.h"

namespace py = pybind11;

namespace fkd {
namespace py_face {
namespace {

using kaggle::FileKind;
using kaggle::KaggleCsvError;

// The exception type, created once at registration and kept for the process.
PyObject* csv_error_type = nullptr;

// A read-only view of a bytes-like object's memory, released on destruction.
// (py::buffer_info cannot hold a PyBUF_SIMPLE view: it has no shape or format.)
class Bytes {
 public:
  explicit Bytes(const py::buffer& buffer) {
    if (PyObject_GetBuffer(buffer.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~Bytes() { PyBuffer_Release(&view_); }
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  const char* data() const { return static_cast<const char*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

kaggle::RowIndex index(const Bytes& bytes, FileKind kind, int num_threads) {
  py::gil_scoped_release release;
  return kaggle::index_rows(bytes.data(), bytes.size(), kind, num_threads);
}

py::tuple read_training(const py::buffer& buffer, int num_threads) {
  const Bytes bytes(buffer);
  const kaggle::RowIndex rows = index(bytes, FileKind::kTraining, num_threads);
  const py::ssize_t n = rows.rows();
  py::array_t<float> keypoints({n, static_cast<py::ssize_t>(kaggle::kNumKeypointColumns)});
  py::array_t<uint8_t> images({n, static_cast<py::ssize_t>(kaggle::kImageSide),
                               static_cast<py::ssize_t>(kaggle::kImageSide)});
  {
    float* kp = keypoints.mutable_data();
    uint8_t* im = images.mutable_data();
    py::gil_scoped_release release;
    kaggle::parse_training(bytes.data(), rows, kp, im, num_threads);
  }
  return py::make_tuple(keypoints, images);
}

py::tuple read_test(const py::buffer& buffer, int num_threads) {
  const Bytes bytes(buffer);
  const kaggle::RowIndex rows = index(bytes, FileKind::kTest, num_threads);
  const py::ssize_t n = rows.rows();
  py::array_t<int64_t> ids(n);
  py::array_t<uint8_t> images({n, static_cast<py::ssize_t>(kaggle::kImageSide),
                               static_cast<py::ssize_t>(kaggle::kImageSide)});
  {
    int64_t* id = ids.mutable_data();
    uint8_t* im = images.mutable_data();
    py::gil_scoped_release release;
    kaggle::parse_test(bytes.data(), rows, id, im, num_threads);
  }
  return py::make_tuple(ids, images);
}

}  // namespace

void register_kaggle_csv(py::module_& m) {
  csv_error_type = PyErr_NewExceptionWithDoc(
      "fkd_ops._native.KaggleCsvError",
      "A Kaggle CSV format error; args are (reason, line, column, field), line and column "
      "1-based (column 0: not in one field).",
      PyExc_ValueError, nullptr);
  if (csv_error_type == nullptr) throw py::error_already_set();
  m.attr("KaggleCsvError") = py::handle(csv_error_type);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const KaggleCsvError& e) {
      py::tuple args = py::make_tuple(e.reason(), e.line(), e.column(), e.field());
      PyErr_SetObject(csv_error_type, args.ptr());
    }
  });

  m.def("read_kaggle_training", &read_training, py::arg("data"), py::arg("num_threads") = 0,
        "Parses the bytes of a Kaggle training.csv: returns (keypoints float32 [N, 30] with NaN "
        "for missing, images uint8 [N, 96, 96]). num_threads <= 0 uses every core.");
  m.def("read_kaggle_test", &read_test, py::arg("data"), py::arg("num_threads") = 0,
        "Parses the bytes of a Kaggle test.csv: returns (image_ids int64 [N], images uint8 "
        "[N, 96, 96]). num_threads <= 0 uses every core.");
}

}  // namespace py_face
}  // namespace fkd
