// The native reader of Kaggle's Facial Keypoints Detection CSV files.
//
// Plain C++ over a byte buffer (no TensorFlow, no Python): the bindings hand it
// the bytes of training.csv or test.csv (read from disk or inflated from the
// zip) and caller-owned output buffers. Parsing is strict and all-or-nothing:
// any deviation from the format throws KaggleCsvError naming the 1-based line and
// column (field) where it was seen, and the caller discards the outputs.
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

// The 30 keypoint column names of training.csv, in file order.
const std::vector<std::string>& keypoint_columns();

enum class FileKind { kTraining, kTest };

// A format error. line and column are 1-based (line 1 is the header; column is
// the field number, 0 when the problem is not in one field); field is the
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

// The data rows of a file after the header: [begin, end) byte offsets of each
// row's content, line terminator excluded.
struct RowIndex {
  std::vector<int64_t> begin;
  std::vector<int64_t> end;
  bool last_unterminated = false;  // the file's last line has no line break
  int64_t rows() const { return static_cast<int64_t>(begin.size()); }
};

// Checks the header and finds the data rows, splitting the search for line
// ends over num_threads threads. Throws KaggleCsvError for an empty file, a
// wrong header or an empty line. num_threads <= 0 picks the hardware's count.
RowIndex index_rows(const char* data, size_t size, FileKind kind, int num_threads);

// Parses the rows of a training file (data: the buffer given to index_rows)
// into keypoints [rows, 30] (NaN = missing)
// and images [rows, 9216]. Rows are split over num_threads threads; the error
// reported is the one on the earliest line, so it does not depend on the split.
void parse_training(const char* data, const RowIndex& rows, float* keypoints, uint8_t* images,
                    int num_threads);

// Parses the rows of a test file into image_ids [rows] and images [rows, 9216].
void parse_test(const char* data, const RowIndex& rows, int64_t* image_ids, uint8_t* images,
                int num_threads);

}  // namespace kaggle
}  // namespace fkd
