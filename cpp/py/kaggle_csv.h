// The native reader of Kaggle's Facial Keypoints Detection CSV files.
//
// Plain C++ (no TensorFlow, no Python): the bindings hand it the bytes of
// training.csv or test.csv (inflated from the zip), or an open file, and
// caller-owned output buffers. A file is read with pread(2) a piece at a time
// into small buffers of each thread, twice (once to find the lines, once to
// parse them), never mapped: a file truncated while it is read is then an error,
// not SIGBUS, and memory holds the outputs and a few pieces, not the file.
// Parsing is strict and all-or-nothing: any deviation from the format throws
// KaggleCsvError naming the 1-based line and column (field) where it was seen,
// and the caller discards the outputs.
//
// Format: a header line, then one line per face; lines end in "\n" or "\r\n"
// (each line on its own, so CRLF and LF files both read); the last line may lack
// its terminator. training.csv has 31 fields: the 30 keypoint columns (decimal
// numbers, empty = missing -> NaN) then Image. test.csv has ImageId (an integer)
// then Image. Image is 9216 integers 0..255 separated by single spaces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fkd {
namespace kaggle {

inline constexpr int kImageSide = 96;
inline constexpr int kImagePixels = kImageSide * kImageSide;
inline constexpr int kNumKeypointColumns = 30;

enum class FileKind { kTraining, kTest };

// A file's header: its column names in file order, given by the caller (the
// Python package holds Kaggle's names): for training.csv the 30 keypoint
// columns then the image, for test.csv the image id then the image.
using Header = std::vector<std::string>;

// The number of columns a header of this kind has.
size_t header_columns(FileKind kind);

// A format error. line and column are 1-based (line 1 is the header; line 0:
// the file as a whole, e.g. it shrank while it was read; column is the field
// number, 0 when the problem is not in one field); field is the
// column's name ("" when column is 0); reason says what is wrong. what() joins
// them: "line 3, column 31 (Image): ...".
class KaggleCsvError : public std::runtime_error {
 public:
  KaggleCsvError(int64_t line, int64_t column, std::string field, std::string reason);
  int64_t line() const { return line_; }
  int64_t column() const { return column_; }
  const std::string& field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  int64_t line_;
  int64_t column_;
  std::string field_;
  std::string reason_;
};

// The shortest data line that can be valid, line break excluded: 30 commas
// (training) or a one-digit ImageId and a comma (test), then 9216 one-digit
// pixels with 9215 spaces. A shorter line is an error whatever it holds, which
// is what bounds the reader's memory by the file's size: at most
// size / min_row_bytes rows are ever indexed or allocated.
int64_t min_row_bytes(FileKind kind);

// The data rows of a file after the header: [begin, end) byte offsets of each
// row's content, line terminator excluded. Indexing stops at the first line
// shorter than min_row_bytes (that line included: parsing it reports the
// error), so rows() <= size / min_row_bytes + 1.
struct RowIndex {
  std::vector<int64_t> begin;
  std::vector<int64_t> end;
  bool last_unterminated = false;  // the file's last line has no line break
  int64_t rows() const { return static_cast<int64_t>(begin.size()); }
};

// Where the file's bytes come from: memory that holds them all, or an open file
// of a known size read on demand.
class Source {
 public:
  Source(const char* data, int64_t size) : data_(data), fd_(-1), size_(size) {}
  Source(int fd, int64_t size) : data_(nullptr), fd_(fd), size_(size) {}  // fd >= 0
  int64_t size() const { return size_; }
  // Bytes [begin, end) of the file (0 <= begin <= end <= size): a pointer into
  // the memory, or those bytes read into *scratch (grown as needed), valid until
  // scratch is used again. Throws KaggleCsvError with line 0 when the file has
  // become shorter than size, FileReadError when the system refuses the read.
  const char* view(int64_t begin, int64_t end, std::vector<char>* scratch) const;

 private:
  const char* data_;
  int fd_;
  int64_t size_;
};

// A read(2)/pread(2) failure: errno and what was being read.
class FileReadError : public std::runtime_error {
 public:
  FileReadError(int error_number, const std::string& what)
      : std::runtime_error(what), error_number_(error_number) {}
  int error_number() const { return error_number_; }

 private:
  int error_number_;
};

// A worker thread could not be started (address space, process or thread
// limit). Every thread already started was released and joined first.
class ThreadStartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks the file's header against `header` (header_columns(kind) names) and
// finds the data rows, splitting the search for line ends over num_threads
// threads. Throws KaggleCsvError for an empty file or a wrong header.
// num_threads <= 0 picks the hardware's count.
RowIndex index_rows(const Source& source, FileKind kind, const Header& header, int num_threads);

// Parses the rows of a training file into keypoints [rows, 30] (NaN = missing)
// and images [rows, 9216]; `header` names the fields in errors. Rows are split
// over num_threads threads; the error reported is the one on the earliest line,
// so it does not depend on the split.
void parse_training(const Source& source, const RowIndex& rows, const Header& header,
                    float* keypoints, uint8_t* images, int num_threads);

// Parses the rows of a test file into image_ids [rows] and images [rows, 9216].
void parse_test(const Source& source, const RowIndex& rows, const Header& header,
                int64_t* image_ids, uint8_t* images, int num_threads);

}  // namespace kaggle
}  // namespace fkd
