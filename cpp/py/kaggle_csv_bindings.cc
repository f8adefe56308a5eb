// The pybind11 face of the Kaggle CSV reader: takes any contiguous bytes-like
// object (bytes, memoryview, numpy) or an open file descriptor, releases the GIL
// while the C++ parser runs, and returns numpy arrays. No C++ exception leaves
// here as itself: a format error is _native.KaggleCsvError (a ValueError) whose
// args are (reason, line, column, field), fkd_ops.kaggle_files adds the file
// name; running out of memory is MemoryError saying what was being allocated; a
// read failure is OSError with its errno; a thread that cannot start is
// RuntimeError.
#include "py/kaggle_csv_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <new>
#include <string>
#include <vector>

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

// Running out of memory, with what was being done.
class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string megabytes(int64_t bytes) { return std::to_string((bytes + 999999) / 1000000) + " MB"; }

// Runs fn, turning std::bad_alloc into OutOfMemory naming `what`.
template <typename Fn>
auto naming_memory(const std::string& what, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("out of memory while " + what);
  }
}

const char* kind_name(FileKind kind) {
  return kind == FileKind::kTraining ? "training.csv" : "test.csv";
}

// The two outputs of a file kind: keypoints [N, 30] or image ids [N], and images.
struct Outputs {
  py::array first;
  py::array_t<uint8_t> images;
};

Outputs parse(const kaggle::Source& source, const kaggle::RowIndex& rows, FileKind kind,
              const kaggle::Header& header, int num_threads) {
  const py::ssize_t n = rows.rows();
  const py::ssize_t side = kaggle::kImageSide;
  Outputs out;
  // numpy raises its own MemoryError ("Unable to allocate ... for an array with
  // shape ..."), which names the shape; n is bounded by the file's size.
  out.images = py::array_t<uint8_t>({n, side, side});
  uint8_t* images = out.images.mutable_data();
  const std::string what =
      "parsing " + std::to_string(n) + (n == 1 ? " row of " : " rows of ") + kind_name(kind);
  if (kind == FileKind::kTraining) {
    py::array_t<float> keypoints({n, static_cast<py::ssize_t>(kaggle::kNumKeypointColumns)});
    float* kp = keypoints.mutable_data();
    out.first = keypoints;
    py::gil_scoped_release release;
    naming_memory(what,
                  [&] { kaggle::parse_training(source, rows, header, kp, images, num_threads); });
  } else {
    py::array_t<int64_t> ids(n);
    int64_t* id = ids.mutable_data();
    out.first = ids;
    py::gil_scoped_release release;
    naming_memory(what, [&] { kaggle::parse_test(source, rows, header, id, images, num_threads); });
  }
  return out;
}

// The header the caller gives, checked for this kind's column count.
kaggle::Header header_of(FileKind kind, const std::vector<std::string>& header) {
  const size_t want = kaggle::header_columns(kind);
  if (header.size() != want) {
    throw py::value_error(std::string("the header of a ") + kind_name(kind) + " has " +
                          std::to_string(want) + " columns, got " + std::to_string(header.size()) +
                          " names");
  }
  return header;
}

py::tuple read(const kaggle::Source& source, FileKind kind, const kaggle::Header& header,
               int num_threads) {
  kaggle::RowIndex rows;
  {
    py::gil_scoped_release release;
    rows = naming_memory(
        std::string("finding the lines of a ") + megabytes(source.size()) + " " + kind_name(kind),
        [&] { return kaggle::index_rows(source, kind, header, num_threads); });
  }
  const Outputs out = parse(source, rows, kind, header, num_threads);
  return py::make_tuple(out.first, out.images);
}

py::tuple read_bytes(const py::buffer& buffer, FileKind kind,
                     const std::vector<std::string>& header, int num_threads) {
  const kaggle::Header checked = header_of(kind, header);
  const Bytes bytes(buffer);
  return read(kaggle::Source(bytes.data(), static_cast<int64_t>(bytes.size())), kind, checked,
              num_threads);
}

// Reads `size` bytes of the open file `fd` with pread (no mapping: a file
// truncated meanwhile gives an error, not SIGBUS) and parses them.
py::tuple read_file(int fd, int64_t size, FileKind kind, const std::vector<std::string>& header,
                    int num_threads) {
  const kaggle::Header checked = header_of(kind, header);
  if (fd < 0)
    throw py::value_error("fd must be an open file descriptor, got " + std::to_string(fd));
  if (size < 0) throw py::value_error("size must be >= 0, got " + std::to_string(size));
  return read(kaggle::Source(fd, size), kind, checked, num_threads);
}

FileKind kind_of(const std::string& kind) {
  if (kind == "training") return FileKind::kTraining;
  if (kind == "test") return FileKind::kTest;
  throw py::value_error("kind must be 'training' or 'test', got '" + kind + "'");
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
    } catch (const kaggle::FileReadError& e) {
      py::tuple args = py::make_tuple(e.error_number(), e.what());
      PyErr_SetObject(PyExc_OSError, args.ptr());
    } catch (const kaggle::ThreadStartError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });

  m.def(
      "read_kaggle_training",
      [](const py::buffer& data, const std::vector<std::string>& header, int num_threads) {
        return read_bytes(data, FileKind::kTraining, header, num_threads);
      },
      py::arg("data"), py::arg("header"), py::arg("num_threads") = 0,
      "Parses the bytes of a Kaggle training.csv whose header is `header` (31 names): returns "
      "(keypoints float32 [N, 30] with NaN "
      "for missing, images uint8 [N, 96, 96]). num_threads <= 0 uses every core.");
  m.def(
      "read_kaggle_test",
      [](const py::buffer& data, const std::vector<std::string>& header, int num_threads) {
        return read_bytes(data, FileKind::kTest, header, num_threads);
      },
      py::arg("data"), py::arg("header"), py::arg("num_threads") = 0,
      "Parses the bytes of a Kaggle test.csv whose header is `header` (2 names): returns "
      "(image_ids int64 [N], images uint8 "
      "[N, 96, 96]). num_threads <= 0 uses every core.");
  m.def(
      "read_kaggle_file",
      [](int fd, int64_t size, const std::string& kind, const std::vector<std::string>& header,
         int num_threads) { return read_file(fd, size, kind_of(kind), header, num_threads); },
      py::arg("fd"), py::arg("size"), py::arg("kind"), py::arg("header"),
      py::arg("num_threads") = 0,
      "Reads the first `size` bytes of the open file `fd` (kind 'training' or 'test', header "
      "`header`) with "
      "pread, a piece at a time, and parses them: returns the two arrays of "
      "read_kaggle_training / read_kaggle_test. A file shorter than `size` is a "
      "KaggleCsvError on line 0.");
  m.def(
      "kaggle_min_row_bytes",
      [](const std::string& kind) { return kaggle::min_row_bytes(kind_of(kind)); }, py::arg("kind"),
      "The fewest bytes a data line of this kind ('training' or 'test') can have, line break "
      "excluded; a shorter one is an error whatever it holds.");
}

}  // namespace py_face
}  // namespace fkd
