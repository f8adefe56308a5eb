#include "py/kaggle_csv.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>

namespace fkd {
namespace kaggle {
namespace {

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

// Runs part(t) for t in [0, threads): part 0 on the caller's thread, the others
// on threads of their own. No part starts before every thread has started, so
// when one cannot start (address space, process or thread limit) the started
// ones are released with nothing to do and joined, and ThreadStartError is
// thrown: no thread is left joinable (std::terminate) and no work half done.
// Every exception a part throws is caught on its thread; once all have
// finished, the most telling is rethrown: anything that is not a format error
// first (out of memory, a read failure), then the format error on the earliest
// line, so the report does not depend on the number of threads.
template <typename Part>
void run_on_threads(int threads, Part part) {
  std::vector<std::exception_ptr> errors(threads);
  std::vector<int64_t> error_lines(threads, std::numeric_limits<int64_t>::max());
  auto guarded = [&](int t) {
    try {
      part(t);
    } catch (const KaggleCsvError& e) {
      errors[t] = std::current_exception();
      error_lines[t] = e.line();
    } catch (...) {
      errors[t] = std::current_exception();
      error_lines[t] = -1;
    }
  };
  enum class Gate { kWait, kGo, kAbort };
  std::mutex mutex;
  std::condition_variable opened;
  Gate gate = Gate::kWait;
  auto set_gate = [&](Gate g) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      gate = g;
    }
    opened.notify_all();
  };
  std::vector<std::thread> pool;
  std::string start_failure;
  try {
    pool.reserve(threads > 0 ? threads - 1 : 0);
    for (int t = 1; t < threads; ++t) {
      pool.emplace_back([&, t] {
        {
          std::unique_lock<std::mutex> lock(mutex);
          opened.wait(lock, [&] { return gate != Gate::kWait; });
          if (gate == Gate::kAbort) return;
        }
        guarded(t);
      });
    }
  } catch (const std::system_error& e) {
    start_failure = "cannot start reader thread " + std::to_string(pool.size() + 2) + " of " +
                    std::to_string(threads) + " (" + e.code().message() +
                    "): ask for fewer threads (num_threads) or raise the process's limits";
  } catch (const std::bad_alloc&) {
    start_failure = "out of memory while starting " + std::to_string(threads) + " reader threads";
  }
  if (!start_failure.empty()) {
    set_gate(Gate::kAbort);
    for (auto& th : pool) th.join();
    throw ThreadStartError(start_failure);
  }
  set_gate(Gate::kGo);
  guarded(0);
  for (auto& th : pool) th.join();
  int worst = -1;
  for (int t = 0; t < threads; ++t) {
    if (errors[t] && (worst < 0 || error_lines[t] < error_lines[worst])) worst = t;
  }
  if (worst >= 0) std::rethrow_exception(errors[worst]);
}

// Runs fn(begin, end) over [0, n) split into contiguous parts, one per thread.
template <typename Fn>
void parallel_rows(int64_t n, int num_threads, Fn fn) {
  const int threads = resolve_threads(num_threads, n);
  run_on_threads(threads, [&](int t) { fn(n * t / threads, n * (t + 1) / threads); });
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

// Whether a decimal number that std::from_chars found out of range for a double
// is too small (it then rounds to a signed zero, as Python's float() does) rather
// than too large. The text is one whole number in from_chars' grammar:
// [-]digits[.digits][(e|E)[+-]digits].
bool underflows(const char* p, const char* end) {
  if (p < end && *p == '-') ++p;
  int64_t scale = 0;  // the power of ten of the first nonzero digit, exponent aside
  bool nonzero = false;
  bool fraction = false;
  int64_t fraction_digits = 0;
  for (; p < end && *p != 'e' && *p != 'E'; ++p) {
    if (*p == '.') {
      fraction = true;
      continue;
    }
    if (fraction) ++fraction_digits;
    if (!nonzero && *p != '0') {
      nonzero = true;
      scale = fraction ? -fraction_digits : 0;
    } else if (nonzero && !fraction) {
      ++scale;
    }
  }
  if (!nonzero) return true;
  int64_t exponent = 0;
  bool negative = false;
  if (p < end) ++p;  // the 'e'
  if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
  for (; p < end; ++p) exponent = std::min<int64_t>(exponent * 10 + (*p - '0'), int64_t{1} << 40);
  return scale + (negative ? -exponent : exponent) < 0;
}

// From this magnitude on, a double rounds to infinity as a float32.
constexpr double kFloat32Overflow = 0x1.ffffffp+127;

float parse_keypoint(const RowContext& ctx, int64_t column, const char* begin, const char* end) {
  if (begin == end) return std::numeric_limits<float>::quiet_NaN();
  // Parse as double, then round to float: the same value numpy gets from
  // float(text) cast to float32, so arrays match the usual pandas path.
  double value = 0.0;
  const auto result = std::from_chars(begin, end, value);
  const bool whole = result.ptr == end;
  if (whole && result.ec == std::errc::result_out_of_range && underflows(begin, end)) {
    return *begin == '-' ? -0.0f : 0.0f;
  }
  if (whole && (result.ec == std::errc::result_out_of_range ||
                (result.ec == std::errc() && std::fabs(value) >= kFloat32Overflow))) {
    ctx.fail(column, quote(begin, end) +
                         " is out of range for a coordinate (beyond float32's largest value, "
                         "3.4028235e+38)");
  }
  if (result.ec != std::errc() || !whole || !std::isfinite(value)) {
    ctx.fail(column, quote(begin, end) +
                         " is not a number (expected a decimal coordinate, or "
                         "an empty field for a missing keypoint)");
  }
  return static_cast<float>(value);
}

int64_t parse_image_id(const RowContext& ctx, const char* begin, const char* end) {
  int64_t value = 0;
  const auto result = std::from_chars(begin, end, value);
  if (begin != end && *begin != '-' && result.ptr == end &&
      result.ec == std::errc::result_out_of_range) {
    ctx.fail(1, quote(begin, end) + " is out of range for an ImageId (at most " +
                    std::to_string(std::numeric_limits<int64_t>::max()) + ")");
  }
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

size_t header_columns(FileKind kind) {
  return kind == FileKind::kTraining ? kNumKeypointColumns + 1 : 2;
}

KaggleCsvError::KaggleCsvError(int64_t line, int64_t column, std::string field, std::string reason)
    : std::runtime_error((line > 0 ? "line " + std::to_string(line) : std::string("the file")) +
                         (column > 0 ? ", column " + std::to_string(column) +
                                           (field.empty() ? "" : " (" + field + ")")
                                     : std::string()) +
                         ": " + reason),
      line_(line),
      column_(column),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

int64_t min_row_bytes(FileKind kind) {
  const int64_t image = 2 * kImagePixels - 1;  // "0 0 ... 0"
  return kind == FileKind::kTraining ? kNumKeypointColumns + image : 2 + image;
}

const char* Source::view(int64_t begin, int64_t end, std::vector<char>* scratch) const {
  if (fd_ < 0) return data_ + begin;
  scratch->resize(static_cast<size_t>(std::max<int64_t>(end - begin, 1)));
  char* out = scratch->data();
  int64_t at = begin;
  while (at < end) {
    const ssize_t got = ::pread(fd_, out + (at - begin), static_cast<size_t>(end - at), at);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw FileReadError(error, "cannot read the file at byte " + std::to_string(at) + ": " +
                                     std::generic_category().message(error));
    }
    if (got == 0) {
      throw KaggleCsvError(0, 0, "",
                           "it shrank while it was read (" + std::to_string(size_) +
                               " bytes when opened, it ends at byte " + std::to_string(at) +
                               " now): is another program writing it? Read it again once it is "
                               "complete");
    }
    at += got;
  }
  return out;
}

namespace {

// Compares the header (its text up to its line break) field by field, so the
// error names the first wrong one.
void check_header(const char* data, int64_t header_end, const Header& header) {
  const char* header_content_end = data + header_end;
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
      return;
    }
    p = q + 1;
  }
}

// Bytes a thread reads (from a file) and searches for line ends at a time:
// small enough to stay in its core's cache between the copy and the search.
constexpr int64_t kIndexPieceBytes = int64_t{1} << 16;
// Bytes of rows a parsing thread reads at a time (at least one whole row).
constexpr int64_t kParsePieceBytes = int64_t{1} << 18;
// A thread per this many bytes of file at most.
constexpr int64_t kBytesPerThread = int64_t{1} << 20;
// A header longer than this is wrong whatever it holds: no more is compared.
constexpr int64_t kHeaderBytesShown = int64_t{1} << 20;

// A line end as found by the search: its offset, and whether a '\r' before it
// belongs to the terminator (at * 2 + 1 when it does).
inline int64_t content_end_of(int64_t mark) { return (mark >> 1) - (mark & 1); }
inline int64_t line_end_of(int64_t mark) { return mark >> 1; }

}  // namespace

RowIndex index_rows(const Source& source, FileKind kind, const Header& header, int num_threads) {
  const int64_t size = source.size();
  if (size == 0) {
    throw KaggleCsvError(1, 0, "", "the file is empty, expected the header " + header_text(header));
  }
  const int64_t min_row = min_row_bytes(kind);

  // Line ends, searched in parallel over contiguous byte ranges. A part stops
  // at the first line it holds whole that is too short to be a row, and parts
  // after a part that stopped stop too: nothing past the first short line is
  // needed, so what is stored stays bounded by the file's size whatever its
  // line count.
  const int threads = resolve_threads(num_threads, std::max<int64_t>(1, size / kBytesPerThread));
  std::vector<std::vector<int64_t>> found(threads);
  std::atomic<int> first_short_part{threads};
  run_on_threads(threads, [&](int t) {
    const int64_t begin = size * t / threads;
    const int64_t end = size * (t + 1) / threads;
    std::vector<char> scratch;
    int64_t previous = -1;  // the last line end this part saw
    for (int64_t piece = begin; piece < end; piece += kIndexPieceBytes) {
      if (first_short_part.load(std::memory_order_relaxed) < t) return;
      const int64_t piece_end = std::min(end, piece + kIndexPieceBytes);
      // One byte more in front: whether a line end is preceded by '\r'.
      const int64_t from = piece > 0 ? piece - 1 : 0;
      const char* bytes = source.view(from, piece_end, &scratch);
      const char* p = bytes + (piece - from);
      const char* stop = bytes + (piece_end - from);
      while (p < stop) {
        const char* hit =
            static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(stop - p)));
        if (hit == nullptr) break;
        const int64_t at = from + (hit - bytes);
        found[t].push_back(at * 2 + (hit > bytes && hit[-1] == '\r' ? 1 : 0));
        // Between two line ends both in this part lies a data line (the header
        // ends at the file's first line end).
        if (previous >= 0 && at - previous - 1 < min_row) {
          int expected = first_short_part.load();
          while (t < expected && !first_short_part.compare_exchange_weak(expected, t)) {
          }
          return;
        }
        previous = at;
        p = hit + 1;
      }
    }
  });

  // The header ends at the first line end; the rows follow, up to and
  // including the first short one.
  RowIndex rows;
  size_t total = 0;
  for (const auto& f : found) total += f.size();
  rows.begin.reserve(total + 1);
  rows.end.reserve(total + 1);
  int64_t header_end = -1;  // content end of the header
  int64_t previous = -1;    // the last line end
  bool stopped = false;
  for (const auto& f : found) {
    for (int64_t mark : f) {
      const int64_t at = line_end_of(mark);
      if (header_end < 0) {
        header_end = content_end_of(mark);
      } else {
        rows.begin.push_back(previous + 1);
        rows.end.push_back(content_end_of(mark));
        if (at - previous - 1 < min_row) {
          stopped = true;
          break;
        }
      }
      previous = at;
    }
    if (stopped) break;
  }
  std::vector<char> scratch;
  if (!stopped && previous + 1 < size) {
    // The file ends without a line break: on the header, or on a last row.
    const int64_t start = previous + 1;
    const int64_t content_end = *source.view(size - 1, size, &scratch) == '\r' ? size - 1 : size;
    if (header_end < 0) {
      header_end = content_end;
    } else {
      rows.begin.push_back(start);
      rows.end.push_back(std::max(start, content_end));
      rows.last_unterminated = true;
    }
  }
  if (header_end < 0) header_end = 0;  // the file is a line break and nothing else
  const int64_t shown = std::min(header_end, kHeaderBytesShown);
  check_header(source.view(0, shown, &scratch), shown, header);
  return rows;
}

namespace {

// Runs row(r, begin, end) over the rows, split over threads, with each row's
// bytes in memory: from a file, read as many whole rows as fit in a piece (at
// least one) at a time, so no byte is read twice.
template <typename Row>
void for_each_row(const Source& source, const RowIndex& rows, int num_threads, Row row) {
  parallel_rows(rows.rows(), num_threads, [&](int64_t first, int64_t last) {
    std::vector<char> scratch;
    int64_t r = first;
    while (r < last) {
      const int64_t piece_begin = rows.begin[r];
      int64_t until = r + 1;  // rows [r, until) in this piece
      while (until < last && rows.end[until] - piece_begin <= kParsePieceBytes) ++until;
      const char* piece = source.view(piece_begin, rows.end[until - 1], &scratch);
      for (; r < until; ++r) {
        row(r, piece + (rows.begin[r] - piece_begin), piece + (rows.end[r] - piece_begin));
      }
    }
  });
}

}  // namespace

void parse_training(const Source& source, const RowIndex& rows, const Header& header,
                    float* keypoints, uint8_t* images, int num_threads) {
  for_each_row(source, rows, num_threads, [&](int64_t r, const char* p, const char* end) {
    const RowContext ctx = context_of(rows, r, &header);
    check_row_not_empty(ctx, p, end);
    float* kp = keypoints + r * kNumKeypointColumns;
    for (int64_t c = 0; c < kNumKeypointColumns; ++c) {
      const char* q = field_end(ctx, c + 1, p, end);
      kp[c] = parse_keypoint(ctx, c + 1, p, q);
      p = q + 1;
    }
    parse_image(ctx, kNumKeypointColumns + 1, p, end, images + r * kImagePixels);
  });
}

void parse_test(const Source& source, const RowIndex& rows, const Header& header,
                int64_t* image_ids, uint8_t* images, int num_threads) {
  for_each_row(source, rows, num_threads, [&](int64_t r, const char* p, const char* end) {
    const RowContext ctx = context_of(rows, r, &header);
    check_row_not_empty(ctx, p, end);
    const char* q = field_end(ctx, 1, p, end);
    image_ids[r] = parse_image_id(ctx, p, q);
    parse_image(ctx, 2, q + 1, end, images + r * kImagePixels);
  });
}

}  // namespace kaggle
}  // namespace fkd
