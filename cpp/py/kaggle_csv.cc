#include "py/kaggle_csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

namespace fkd {
namespace kaggle {
namespace {

constexpr const char* kImageColumn = "Image";
constexpr const char* kImageIdColumn = "ImageId";
constexpr size_t kShownChars = 40;  // how much of a bad field an error quotes

// A field's text for an error message, cut short and with control characters escaped.
std::string quote(const char* begin, const char* end) {
  std::string out = "'";
  const size_t n = static_cast<size_t>(end - begin);
  for (size_t i = 0; i < std::min(n, kShownChars); ++i) {
    const unsigned char c = static_cast<unsigned char>(begin[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (n > kShownChars) out += "...";
  return out + "'";
}

std::vector<std::string> expected_header(FileKind kind) {
  std::vector<std::string> names;
  if (kind == FileKind::kTraining) {
    names = keypoint_columns();
  } else {
    names.push_back(kImageIdColumn);
  }
  names.push_back(kImageColumn);
  return names;
}

// The expected header for messages: in full when short, else its ends.
std::string header_text(const std::vector<std::string>& names) {
  std::string out = "'";
  if (names.size() <= 4) {
    for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
  } else {
    out += names[0] + "," + names[1] + ",...," + names[names.size() - 2] + "," + names.back();
  }
  return out + "' (" + std::to_string(names.size()) + " columns)";
}

int resolve_threads(int requested, int64_t work_items) {
  int n = requested;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, work_items)));
}

// Runs fn(begin, end) over [0, n) split into contiguous parts, one per thread
// (the caller's thread takes the first). A KaggleCsvError from any part is
// rethrown after all have finished: the one on the earliest line, so the report
// does not depend on the number of threads. Other exceptions are rethrown as is.
template <typename Fn>
void parallel_rows(int64_t n, int num_threads, Fn fn) {
  const int threads = resolve_threads(num_threads, n);
  std::vector<std::exception_ptr> errors(threads);
  std::vector<int64_t> error_lines(threads, std::numeric_limits<int64_t>::max());
  auto run = [&](int t) {
    const int64_t begin = n * t / threads;
    const int64_t end = n * (t + 1) / threads;
    try {
      fn(begin, end);
    } catch (const KaggleCsvError& e) {
      errors[t] = std::current_exception();
      error_lines[t] = e.line();
    } catch (...) {
      errors[t] = std::current_exception();
      error_lines[t] = -1;  // not a format error: report it first
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(run, t);
  run(0);
  for (auto& th : pool) th.join();
  int worst = -1;
  for (int t = 0; t < threads; ++t) {
    if (errors[t] && (worst < 0 || error_lines[t] < error_lines[worst])) worst = t;
  }
  if (worst >= 0) std::rethrow_exception(errors[worst]);
}

// Where a row sits in the file, for error messages.
struct RowContext {
  int64_t line;            // 1-based line number
  bool last_unterminated;  // the file ends on this line without a line break
  const std::vector<std::string>* columns;

  [[noreturn]] void fail(int64_t column, const std::string& reason) const {
    std::string why = reason;
    if (last_unterminated) {
      why += " (the file ends inside this line without a line break: is it truncated?)";
    }
    const std::string name = column >= 1 && column <= static_cast<int64_t>(columns->size())
                                 ? (*columns)[column - 1]
                                 : std::string();
    throw KaggleCsvError(line, column, name, why);
  }
};

int64_t count_char(const char* begin, const char* end, char c) {
  return static_cast<int64_t>(std::count(begin, end, c));
}

// The slow path, taken once a row is known to be bad: says exactly what is
// wrong with an Image field (or with the row, when the field holds a comma).
[[noreturn]] void diagnose_image(const RowContext& ctx, int64_t column, const char* begin,
                                 const char* end) {
  const int64_t expected_fields = static_cast<int64_t>(ctx.columns->size());
  const int64_t extra = count_char(begin, end, ',');
  if (extra > 0) {
    ctx.fail(expected_fields + 1, "the line has " + std::to_string(expected_fields + extra) +
                                      " fields, expected " + std::to_string(expected_fields));
  }
  if (begin == end)
    ctx.fail(column, "the Image field is empty, expected " + std::to_string(kImagePixels) +
                         " pixel values");
  int64_t count = 0;
  const char* p = begin;
  while (true) {
    const char* q = p;
    while (q < end && *q != ' ') ++q;
    ++count;
    const std::string where = "pixel " + std::to_string(count);
    if (q == p) {
      ctx.fail(column, where +
                           " is empty (a space at the start or end of Image, or two spaces "
                           "in a row)");
    }
    unsigned value = 0;
    for (const char* c = p; c < q; ++c) {
      const unsigned d = static_cast<unsigned char>(*c) - '0';
      if (d > 9) ctx.fail(column, where + " is " + quote(p, q) + ", not an integer 0..255");
      value = std::min(value * 10 + d, 1000u);
    }
    if (value > 255 || q - p > 3) {
      ctx.fail(column, where + " is " + quote(p, q) + ", outside 0..255");
    }
    if (q == end) break;
    p = q + 1;
  }
  ctx.fail(column, "Image has " + std::to_string(count) + " pixel values, expected " +
                       std::to_string(kImagePixels) + " (96 x 96)");
}

// Parses an Image field into 9216 bytes. The loop handles well-formed data;
// anything unexpected goes to diagnose_image for the message. (A branch-free
// variant reading each "ddd " token as one 4-byte word measured slower: its
// chain of dependent loads costs more than the mispredicted digit counts.)
void parse_image(const RowContext& ctx, int64_t column, const char* begin, const char* end,
                 uint8_t* out) {
  const char* p = begin;
  int i = 0;
  while (p < end) {
    unsigned v = static_cast<unsigned char>(*p) - '0';
    if (v > 9) break;
    ++p;
    if (p < end) {
      unsigned d = static_cast<unsigned char>(*p) - '0';
      if (d <= 9) {
        v = v * 10 + d;
        ++p;
        if (p < end) {
          d = static_cast<unsigned char>(*p) - '0';
          if (d <= 9) {
            v = v * 10 + d;
            ++p;
          }
        }
      }
    }
    if (v > 255 || i == kImagePixels) break;
    out[i++] = static_cast<uint8_t>(v);
    if (p == end) {
      if (i == kImagePixels) return;
      break;
    }
    if (*p != ' ' || p + 1 == end) break;
    ++p;
  }
  diagnose_image(ctx, column, begin, end);
}

// The end of the field starting at p: the next comma, or end of the row
// (short row) when there is none.
const char* field_end(const RowContext& ctx, int64_t column, const char* p, const char* end) {
  const void* comma = std::memchr(p, ',', static_cast<size_t>(end - p));
  if (comma == nullptr) {
    const int64_t expected = static_cast<int64_t>(ctx.columns->size());
    ctx.fail(column + 1, "missing: the line has " + std::to_string(column) + " field" +
                             (column == 1 ? "" : "s") + ", expected " + std::to_string(expected));
  }
  return static_cast<const char*>(comma);
}

float parse_keypoint(const RowContext& ctx, int64_t column, const char* begin, const char* end) {
  if (begin == end) return std::numeric_limits<float>::quiet_NaN();
  // Parse as double, then round to float: the same value numpy gets from
  // float(text) cast to float32, so arrays match the usual pandas path.
  double value = 0.0;
  const auto result = std::from_chars(begin, end, value);
  if (result.ec == std::errc::result_out_of_range) {
    ctx.fail(column, quote(begin, end) + " is out of range for a coordinate");
  }
  if (result.ec != std::errc() || result.ptr != end || !std::isfinite(value)) {
    ctx.fail(column, quote(begin, end) +
                         " is not a number (expected a decimal coordinate, or "
                         "an empty field for a missing keypoint)");
  }
  return static_cast<float>(value);
}

int64_t parse_image_id(const RowContext& ctx, const char* begin, const char* end) {
  int64_t value = 0;
  const auto result = std::from_chars(begin, end, value);
  if (begin == end || result.ec != std::errc() || result.ptr != end || value < 0 || *begin == '-') {
    ctx.fail(1, (begin == end ? std::string("empty") : quote(begin, end)) +
                    ", expected a non-negative integer ImageId");
  }
  return value;
}

RowContext context_of(const RowIndex& rows, int64_t r, const std::vector<std::string>* columns) {
  return RowContext{r + 2, rows.last_unterminated && r + 1 == rows.rows(), columns};
}

void check_row_not_empty(const RowContext& ctx, const char* begin, const char* end) {
  if (begin == end) {
    ctx.fail(0, "the line is empty, expected " + std::to_string(ctx.columns->size()) +
                    " comma-separated fields");
  }
}

}  // namespace

const std::vector<std::string>& keypoint_columns() {
  static const std::vector<std::string> columns = [] {
    const char* names[] = {"left_eye_center",
                           "right_eye_center",
                           "left_eye_inner_corner",
                           "left_eye_outer_corner",
                           "right_eye_inner_corner",
                           "right_eye_outer_corner",
                           "left_eyebrow_inner_end",
                           "left_eyebrow_outer_end",
                           "right_eyebrow_inner_end",
                           "right_eyebrow_outer_end",
                           "nose_tip",
                           "mouth_left_corner",
                           "mouth_right_corner",
                           "mouth_center_top_lip",
                           "mouth_center_bottom_lip"};
    std::vector<std::string> out;
    for (const char* n : names) {
      out.push_back(std::string(n) + "_x");
      out.push_back(std::string(n) + "_y");
    }
    return out;
  }();
  return columns;
}

KaggleCsvError::KaggleCsvError(int64_t line, int64_t column, std::string field, std::string reason)
    : std::runtime_error("line " + std::to_string(line) +
                         (column > 0 ? ", column " + std::to_string(column) +
                                           (field.empty() ? "" : " (" + field + ")")
                                     : std::string()) +
                         ": " + reason),
      line_(line),
      column_(column),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

RowIndex index_rows(const char* data, size_t size, FileKind kind, int num_threads) {
  const std::vector<std::string> header = expected_header(kind);
  if (size == 0) {
    throw KaggleCsvError(1, 0, "", "the file is empty, expected the header " + header_text(header));
  }
  const char* end = data + size;
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
  const char* header_end = nl ? nl : end;
  const char* header_content_end = header_end;
  if (header_content_end > data && header_content_end[-1] == '\r') --header_content_end;

  // Compare the header field by field, so the error names the first wrong one.
  const char* p = data;
  for (size_t col = 0;; ++col) {
    const char* q = p;
    while (q < header_content_end && *q != ',') ++q;
    if (col >= header.size()) {
      const int64_t fields =
          static_cast<int64_t>(header.size()) + 1 + count_char(q, header_content_end, ',');
      throw KaggleCsvError(1, static_cast<int64_t>(col) + 1, "",
                           "the header has " + std::to_string(fields) + " fields, expected " +
                               std::to_string(header.size()) + ": " + header_text(header));
    }
    if (static_cast<size_t>(q - p) != header[col].size() ||
        std::memcmp(p, header[col].data(), header[col].size()) != 0) {
      throw KaggleCsvError(1, static_cast<int64_t>(col) + 1, header[col],
                           "the header has " + quote(p, q) + " where '" + header[col] +
                               "' belongs (expected the header " + header_text(header) +
                               "; is this the right file?)");
    }
    if (q == header_content_end) {
      if (col + 1 != header.size()) {
        throw KaggleCsvError(1, static_cast<int64_t>(col) + 2, header[col + 1],
                             "the header has " + std::to_string(col + 1) + " fields, expected " +
                                 std::to_string(header.size()) + ": " + header_text(header));
      }
      break;
    }
    p = q + 1;
  }

  RowIndex rows;
  if (nl == nullptr) return rows;  // a header and nothing else: zero rows
  const char* body = nl + 1;
  const int64_t body_size = end - body;

  // Line ends, searched in parallel over contiguous byte ranges.
  const int64_t chunk_bytes = 1 << 20;
  const int threads = resolve_threads(num_threads, std::max<int64_t>(1, body_size / chunk_bytes));
  std::vector<std::vector<int64_t>> found(threads);
  {
    std::vector<std::thread> pool;
    auto search = [&](int t) {
      const char* b = body + body_size * t / threads;
      const char* e = body + body_size * (t + 1) / threads;
      while (b < e) {
        const char* hit =
            static_cast<const char*>(std::memchr(b, '\n', static_cast<size_t>(e - b)));
        if (hit == nullptr) break;
        found[t].push_back(hit - data);
        b = hit + 1;
      }
    };
    for (int t = 1; t < threads; ++t) pool.emplace_back(search, t);
    search(0);
    for (auto& th : pool) th.join();
  }
  size_t total = 0;
  for (const auto& f : found) total += f.size();
  rows.begin.reserve(total + 1);
  rows.end.reserve(total + 1);
  int64_t start = body - data;
  auto add = [&](int64_t stop) {
    int64_t content_end = stop;
    if (content_end > start && data[content_end - 1] == '\r') --content_end;
    rows.begin.push_back(start);
    rows.end.push_back(content_end);
  };
  for (const auto& f : found) {
    for (int64_t pos : f) {
      add(pos);
      start = pos + 1;
    }
  }
  if (start < static_cast<int64_t>(size)) {
    add(static_cast<int64_t>(size));
    rows.last_unterminated = true;
  }
  return rows;
}

void parse_training(const char* data, const RowIndex& rows, float* keypoints, uint8_t* images,
                    int num_threads) {
  static const std::vector<std::string> columns = expected_header(FileKind::kTraining);
  parallel_rows(rows.rows(), num_threads, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const RowContext ctx = context_of(rows, r, &columns);
      const char* p = data + rows.begin[r];
      const char* end = data + rows.end[r];
      check_row_not_empty(ctx, p, end);
      float* kp = keypoints + r * kNumKeypointColumns;
      for (int64_t c = 0; c < kNumKeypointColumns; ++c) {
        const char* q = field_end(ctx, c + 1, p, end);
        kp[c] = parse_keypoint(ctx, c + 1, p, q);
        p = q + 1;
      }
      parse_image(ctx, kNumKeypointColumns + 1, p, end, images + r * kImagePixels);
    }
  });
}

void parse_test(const char* data, const RowIndex& rows, int64_t* image_ids, uint8_t* images,
                int num_threads) {
  static const std::vector<std::string> columns = expected_header(FileKind::kTest);
  parallel_rows(rows.rows(), num_threads, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const RowContext ctx = context_of(rows, r, &columns);
      const char* p = data + rows.begin[r];
      const char* end = data + rows.end[r];
      check_row_not_empty(ctx, p, end);
      const char* q = field_end(ctx, 1, p, end);
      image_ids[r] = parse_image_id(ctx, p, q);
      parse_image(ctx, 2, q + 1, end, images + r * kImagePixels);
    }
  });
}

}  // namespace kaggle
}  // namespace fkd
