#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0), without xtensor.
//
// A file is: magic "\x93NUMPY", major and minor version bytes, the header length (2 bytes
// little-endian for version 1, 4 bytes for 2 and 3), then a Python dict literal such as
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and a newline,
// then the raw elements in C order.
//
// load_npy<T> reads simple numeric dtypes (f2/f4/f8, i1..i8, u1..u8 and b1, either byte order) and
// converts them to T; save_npy writes T's own dtype, little-endian, atomically. Corrupt or truncated
// files, Fortran order and structured dtypes throw cpdiff::io_error naming the file and the problem.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/half.hpp"

namespace cpdiff::io {

template <class T>
struct npy_array {
  std::vector<std::size_t> shape;
  std::vector<T> data;
  std::size_t size() const { return data.size(); }
};

// What the header says.
struct npy_header {
  char kind = 'f';           // 'f' float, 'i' signed, 'u' unsigned, 'b' bool
  std::size_t itemsize = 4;  // bytes per element
  bool big_endian = false;
  std::vector<std::size_t> shape;
  std::size_t data_offset = 0;  // first element byte in the file
  std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
};

namespace detail {

class npy_header_parser {
 public:
  npy_header_parser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  void parse(npy_header& h) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{', "the header dict does not start with '{'");
    skip_ws();
    while (peek() != '}') {
      const std::string key = parse_string();
      skip_ws();
      expect(':', "expected ':' after key '" + key + "'");
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        have_descr = true;
        if (peek() != '\'' && peek() != '"') fail("'descr' is not a simple type string (structured dtypes are not supported)");
        parse_descr(parse_string(), h);
      } else if (key == "fortran_order") {
        if (have_fortran) fail("duplicate key 'fortran_order'");
        have_fortran = true;
        if (take_word("True")) fail("fortran_order is True; only C-order arrays are supported");
        if (!take_word("False")) fail("fortran_order is not True or False");
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        have_shape = true;
        parse_shape(h.shape);
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}' in the header dict");
      }
    }
    ++i_;
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the header dict");
    if (!have_descr) fail("the header has no 'descr'");
    if (!have_fortran) fail("the header has no 'fortran_order'");
    if (!have_shape) fail("the header has no 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw_error<io_error>("npy", "'", source_, "': ", what, " (header: ", s_.substr(0, 200), ")");
  }
  char peek() const {
    if (i_ >= s_.size()) fail("the header dict is truncated");
    return s_[i_];
  }
  void expect(char c, const std::string& what) {
    if (peek() != c) fail(what);
    ++i_;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool take_word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string in the header dict");
    const std::size_t start = ++i_;
    while (peek() != q) {
      if (s_[i_] == '\\') fail("escape sequences are not supported in the header");
      ++i_;
    }
    return std::string(s_.substr(start, i_++ - start));
  }
  void parse_shape(std::vector<std::size_t>& shape) {
    expect('(', "'shape' is not a tuple");
    skip_ws();
    while (peek() != ')') {
      if (peek() < '0' || peek() > '9') fail("'shape' holds something other than non-negative integers");
      std::uint64_t v = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        const auto digit = static_cast<std::uint64_t>(s_[i_++] - '0');
        if (v > (std::numeric_limits<std::size_t>::max() - digit) / 10) fail("a 'shape' dimension is too large");
        v = v * 10 + digit;
      }
      if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix
      shape.push_back(static_cast<std::size_t>(v));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape'");
      }
    }
    ++i_;
  }
  void parse_descr(const std::string& d, npy_header& h) {
    if (d.size() < 3) fail("unsupported descr '" + d + "'");
    const char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') fail("descr '" + d + "' has no byte order mark");
    h.kind = d[1];
    const std::string digits = d.substr(2);
    if (digits.size() > 2 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail("unsupported descr '" + d + "'");
    h.itemsize = static_cast<std::size_t>(std::stoul(digits));
    const std::size_t n = h.itemsize;
    const bool ok = (h.kind == 'f' && (n == 2 || n == 4 || n == 8)) ||
                    ((h.kind == 'i' || h.kind == 'u') && (n == 1 || n == 2 || n == 4 || n == 8)) ||
                    (h.kind == 'b' && n == 1);
    if (!ok) fail("unsupported descr '" + d + "' (supported: f2 f4 f8 i1-i8 u1-u8 b1)");
    if (order == '|' && n != 1) fail("descr '" + d + "' has no byte order for a multi-byte type");
    h.big_endian = order == '>' || (order == '=' && std::endian::native == std::endian::big);
  }

  std::string_view s_;
  const std::string& source_;
  std::size_t i_ = 0;
};

template <class U>
U npy_load_elem(const std::byte* p, bool swap) {
  unsigned char b[sizeof(U)];
  std::memcpy(b, p, sizeof(U));
  if (swap) std::reverse(b, b + sizeof(U));
  U v;
  std::memcpy(&v, b, sizeof(U));
  return v;
}

template <class T>
T npy_decode(const npy_header& h, const std::byte* p) {
  const bool swap = h.big_endian != (std::endian::native == std::endian::big);
  switch (h.kind) {
    case 'b': return static_cast<T>(npy_load_elem<std::uint8_t>(p, false) != 0 ? 1 : 0);
    case 'f':
      if (h.itemsize == 2) return static_cast<T>(f16_bits_to_float(npy_load_elem<std::uint16_t>(p, swap)));
      if (h.itemsize == 4) return static_cast<T>(npy_load_elem<float>(p, swap));
      return static_cast<T>(npy_load_elem<double>(p, swap));
    case 'i':
      if (h.itemsize == 1) return static_cast<T>(npy_load_elem<std::int8_t>(p, false));
      if (h.itemsize == 2) return static_cast<T>(npy_load_elem<std::int16_t>(p, swap));
      if (h.itemsize == 4) return static_cast<T>(npy_load_elem<std::int32_t>(p, swap));
      return static_cast<T>(npy_load_elem<std::int64_t>(p, swap));
    default:
      if (h.itemsize == 1) return static_cast<T>(npy_load_elem<std::uint8_t>(p, false));
      if (h.itemsize == 2) return static_cast<T>(npy_load_elem<std::uint16_t>(p, swap));
      if (h.itemsize == 4) return static_cast<T>(npy_load_elem<std::uint32_t>(p, swap));
      return static_cast<T>(npy_load_elem<std::uint64_t>(p, swap));
  }
}

// Element p as the integer type T, or false when T cannot hold it (NaN, infinite or out of range): the
// plain conversion would be undefined for floats and would wrap for integers.
template <class T>
bool npy_decode_integer(const npy_header& h, const std::byte* p, T& out) {
  if (h.kind == 'f') {
    const double v = std::trunc(npy_decode<double>(h, p));
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());  // 0 or -2^(bits-1): exact
    constexpr double hi = 2.0 * static_cast<double>(std::numeric_limits<T>::max() / 2 + 1);  // max + 1: exact
    if (!(v >= lo && v < hi)) return false;
    out = static_cast<T>(v);
    return true;
  }
  if (h.kind == 'u') {
    const auto v = npy_decode<std::uint64_t>(h, p);
    if (!std::in_range<T>(v)) return false;
    out = static_cast<T>(v);
    return true;
  }
  const auto v = npy_decode<std::int64_t>(h, p);  // 'i' and 'b'
  if (!std::in_range<T>(v)) return false;
  out = static_cast<T>(v);
  return true;
}

template <class T>
constexpr std::string_view npy_descr_for() {
  static_assert(std::is_arithmetic_v<T>, "save_npy takes arithmetic values");
  static_assert(std::endian::native == std::endian::little, "save_npy writes the host's (little-endian) bytes");
  if constexpr (std::is_same_v<T, bool>) return "|b1";
  else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float and double only");
    return sizeof(T) == 4 ? "<f4" : "<f8";
  } else if constexpr (sizeof(T) == 1) return std::is_signed_v<T> ? "|i1" : "|u1";
  else if constexpr (sizeof(T) == 2) return std::is_signed_v<T> ? "<i2" : "<u2";
  else if constexpr (sizeof(T) == 4) return std::is_signed_v<T> ? "<i4" : "<u4";
  else return std::is_signed_v<T> ? "<i8" : "<u8";
}

}  // namespace detail

// Parse and validate the header of an in-memory .npy file (including that the data size matches).
inline npy_header read_npy_header(std::span<const std::byte> bytes, const std::string& source) {
  auto fail = [&](auto&&... args) {
    throw_error<io_error>("npy", "'", source, "': ", std::forward<decltype(args)>(args)...);
  };
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  static constexpr unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10) fail("file is too short (", bytes.size(), " bytes) for an npy header");
  if (std::memcmp(b, magic, 6) != 0) fail("not an npy file (bad magic string)");
  const unsigned major = b[6], minor = b[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail("unsupported npy format version ", major, ".", minor);
  std::size_t hlen, prefix;
  if (major == 1) {
    hlen = static_cast<std::size_t>(b[8]) | (static_cast<std::size_t>(b[9]) << 8);
    prefix = 10;
  } else {
    if (bytes.size() < 12) fail("file is too short (", bytes.size(), " bytes) for an npy header");
    hlen = static_cast<std::size_t>(b[8]) | (static_cast<std::size_t>(b[9]) << 8) |
           (static_cast<std::size_t>(b[10]) << 16) | (static_cast<std::size_t>(b[11]) << 24);
    prefix = 12;
  }
  if (hlen > bytes.size() - prefix)
    fail("header length ", hlen, " runs past the end of the file (", bytes.size(), " bytes)");
  npy_header h;
  const std::string_view text(reinterpret_cast<const char*>(b + prefix), hlen);
  detail::npy_header_parser(text, source).parse(h);
  h.data_offset = prefix + hlen;

  std::size_t numel = 0, need = 0;
  if (!checked_product(h.shape.begin(), h.shape.end(), numel) || !checked_mul(numel, h.itemsize, need))
    fail("shape overflows");
  const std::size_t have = bytes.size() - h.data_offset;
  if (have < need) fail("data is truncated: expected ", need, " bytes, found ", have);
  if (have > need) fail(have - need, " trailing byte(s) after the data (expected ", need, " bytes)");
  return h;
}

template <class T>
npy_array<T> load_npy_bytes(std::span<const std::byte> bytes, const std::string& source = "<memory>") {
  static_assert(std::is_arithmetic_v<T>, "load_npy takes arithmetic element types");
  const npy_header h = read_npy_header(bytes, source);
  npy_array<T> out;
  out.shape = h.shape;
  const std::size_t n = h.numel();
  out.data.resize(n);
  const std::byte* p = bytes.data() + h.data_offset;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::byte* e = p + i * h.itemsize;
      if (!detail::npy_decode_integer<T>(h, e, out.data[i]))
        throw_error<io_error>("npy", "'", source, "': element ", i, " (", detail::npy_decode<double>(h, e),
                              ") does not fit the requested ", sizeof(T) * 8, "-bit ",
                              std::is_signed_v<T> ? "signed" : "unsigned", " integer type");
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) out.data[i] = detail::npy_decode<T>(h, p + i * h.itemsize);
  }
  return out;
}

template <class T>
npy_array<T> load_npy(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file_bytes(path);
  return load_npy_bytes<T>(bytes, path.string());
}

// The complete file content for `data` of `shape` (version 1.0 unless the header needs 2.0).
template <class T>
std::vector<std::byte> to_npy_bytes(std::span<const std::size_t> shape, std::span<const T> data) {
  std::string dims;
  for (std::size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::size_t n = 0;
  CPDIFF_CHECK(checked_product(shape.begin(), shape.end(), n) && n == data.size(), shape_error, "save_npy",
               data.size(), " values do not fill shape (", dims, ")");
  std::string header = "{'descr': '" + std::string(detail::npy_descr_for<T>()) +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces and end with '\n' so the data starts on a 64-byte boundary.
  auto padded = [&](std::size_t prefix) {
    const std::size_t total = prefix + header.size() + 1;
    return header.size() + (64 - total % 64) % 64 + 1;
  };
  const std::size_t prefix = padded(10) <= 65535 ? 10 : 12;
  header.append(padded(prefix) - header.size() - 1, ' ');
  header += '\n';
  std::vector<std::byte> out(prefix + header.size() + n * sizeof(T));
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  std::memcpy(o, magic, 6);
  o[6] = prefix == 10 ? 1 : 2;
  o[7] = 0;
  const std::size_t hl = header.size();
  for (std::size_t i = 0; i + 8 < prefix; ++i) o[8 + i] = static_cast<unsigned char>((hl >> (8 * i)) & 0xFF);
  std::memcpy(o + prefix, header.data(), header.size());
  if (n > 0) std::memcpy(o + prefix + header.size(), data.data(), n * sizeof(T));
  return out;
}

template <class T>
void save_npy(const std::filesystem::path& path, std::span<const std::size_t> shape, std::span<const T> data) {
  write_file_atomic(path, std::span<const std::byte>(to_npy_bytes<T>(shape, data)));
}
template <class T>
void save_npy(const std::filesystem::path& path, const std::vector<std::size_t>& shape, const std::vector<T>& data) {
  save_npy<T>(path, std::span<const std::size_t>(shape), std::span<const T>(data));
}
template <class T>
void save_npy(const std::filesystem::path& path, const npy_array<T>& a) {
  save_npy<T>(path, a.shape, a.data);
}

}  // namespace cpdiff::io
