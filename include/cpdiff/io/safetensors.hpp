#pragma once
// safetensors reader and writer (format: 8-byte little-endian header length N, N bytes of JSON
// header starting with '{' and padded with spaces, then the tensor data; see PACKAGES.md).
//
// The reader validates the whole file before returning, and throws cpdiff::io_error naming the file
// and the problem for anything malformed: short file, oversized or truncated header, invalid JSON,
// duplicate keys, bad entry fields, unknown dtypes, overflowing shapes, size/offset mismatches, holes,
// overlaps and trailing bytes. Tensor entries must hold exactly dtype, shape and data_offsets.
//
// The writer lays tensors out in name order with the header padded to a multiple of 8 bytes, and
// saves with write_file_atomic.
#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/io/safetensors_dtype.hpp"

namespace cpdiff::io {

static_assert(std::endian::native == std::endian::little, "cpdiff::io assumes a little-endian host");
static_assert(sizeof(std::size_t) == sizeof(std::uint64_t), "cpdiff::io assumes 64-bit sizes");

inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

struct tensor_entry {
  std::string name;
  st_dtype dtype = st_dtype::F32;
  std::vector<std::size_t> shape;
  std::size_t begin = 0;  // byte offsets relative to the first data byte, end exclusive
  std::size_t end = 0;

  std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
  std::size_t nbytes() const { return end - begin; }
};

class safetensors_file {
 public:
  safetensors_file() = default;

  static safetensors_file load(const std::filesystem::path& path) {
    return from_bytes(read_file_bytes(path), path.string());
  }
  // Parse and validate an in-memory file. `source` names it in error messages.
  static safetensors_file from_bytes(std::vector<std::byte> bytes, std::string source = "<memory>") {
    safetensors_file f;
    f.source_ = std::move(source);
    f.bytes_ = std::move(bytes);
    f.parse();
    return f;
  }

  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<tensor_entry>& tensors() const { return entries_; }  // sorted by name
  std::size_t size() const { return entries_.size(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  const tensor_entry& at(std::string_view name) const {
    if (const tensor_entry* e = find(name)) return *e;
    std::string avail;
    const std::size_t shown = std::min<std::size_t>(entries_.size(), 10);
    for (std::size_t i = 0; i < shown; ++i) avail += (i ? ", " : "") + ("'" + entries_[i].name + "'");
    if (entries_.size() > shown) avail += ", ... (" + std::to_string(entries_.size() - shown) + " more)";
    if (entries_.empty()) avail = "(none)";
    throw_error<io_error>("safetensors", "'", source_, "': no tensor named '", name, "'; the file has ",
                          entries_.size(), " tensor(s): ", avail);
  }

  // The raw little-endian bytes of a tensor.
  std::span<const std::byte> raw(std::string_view name) const {
    const tensor_entry& e = at(name);
    return std::span<const std::byte>(bytes_.data() + data_start_ + e.begin, e.nbytes());
  }

  // Values converted to float / double. Every float, integer and bool dtype converts (F64 and large
  // integers are rounded to the nearest float).
  std::vector<float> to_f32(std::string_view name) const { return convert<float>(name); }
  std::vector<double> to_f64(std::string_view name) const { return convert<double>(name); }
  // Integer and bool tensors only.
  std::vector<std::int64_t> to_i64(std::string_view name) const {
    const tensor_entry& e = at(name);
    if (st_dtype_is_float(e.dtype))
      throw_error<io_error>("safetensors", "'", source_, "': tensor '", e.name, "' has dtype ",
                            st_dtype_name(e.dtype), ", not an integer dtype");
    return convert<std::int64_t>(name);
  }

 private:
  template <class T>
  std::vector<T> convert(std::string_view name) const {
    const tensor_entry& e = at(name);
    const std::byte* p = bytes_.data() + data_start_ + e.begin;
    const std::size_t n = e.numel();
    const std::size_t w = st_dtype_size(e.dtype);
    std::vector<T> out(n);
    if ((std::is_same_v<T, float> && e.dtype == st_dtype::F32) || (std::is_same_v<T, double> && e.dtype == st_dtype::F64)) {
      if (n > 0) std::memcpy(out.data(), p, n * sizeof(T));  // same representation: no per-element work
      return out;
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = st_decode<T>(e.dtype, p + i * w);
    return out;
  }

  const tensor_entry* find(std::string_view name) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [](const tensor_entry& e, std::string_view n) { return e.name < n; });
    return (it != entries_.end() && it->name == name) ? &*it : nullptr;
  }

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    throw_error<io_error>("safetensors", "'", source_, "': ", std::forward<Args>(args)...);
  }

  // Linear in the header's size, depth-bounded, NUL bytes and repeated keys rejected (io/json_read.hpp).
  nlohmann::json parse_header(std::string_view text) const {
    json_parse_result r = parse_json(text, {.reject_duplicate_keys = true});
    if (r.duplicate_depth == 1) fail("duplicate tensor name '", r.duplicate_key, "' in the header");
    if (!r.duplicate_key.empty()) fail("duplicate key '", r.duplicate_key, "' inside a header entry");
    if (!r.ok()) fail("header is not valid JSON: ", r.error);
    return std::move(r.value);
  }

  void parse() {
    const std::size_t size = bytes_.size();
    if (size < 8) fail("file is too short (", size, " bytes) to hold the 8-byte header length");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes_.data(), 8);
    if (n > safetensors_max_header)
      fail("header length ", n, " exceeds the limit of ", safetensors_max_header, " bytes");
    if (n > size - 8) fail("header length ", n, " runs past the end of the file (", size, " bytes)");
    if (n == 0 || bytes_[8] != std::byte{'{'}) fail("header does not start with '{'");
    data_start_ = 8 + static_cast<std::size_t>(n);
    const std::size_t data_size = size - data_start_;

    const nlohmann::json j =
        parse_header(std::string_view(reinterpret_cast<const char*>(bytes_.data() + 8), static_cast<std::size_t>(n)));
    if (!j.is_object()) fail("header is not a JSON object");

    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const nlohmann::json& v = it.value();
      if (key == "__metadata__") {
        if (v.is_null()) continue;
        if (!v.is_object()) fail("__metadata__ is not a JSON object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) fail("__metadata__ value for key '", m.key(), "' is not a string");
          metadata_.emplace(m.key(), m.value().get<std::string>());
        }
        continue;
      }
      entries_.push_back(parse_entry(key, v, data_size));
    }

    // Data layout: sorted by offset, contiguous from 0, ending exactly at the end of the file.
    std::vector<const tensor_entry*> by_offset;
    by_offset.reserve(entries_.size());
    for (const auto& e : entries_) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(), [](const tensor_entry* a, const tensor_entry* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::size_t pos = 0;
    const tensor_entry* prev = nullptr;
    for (const tensor_entry* e : by_offset) {
      if (e->begin != pos) {
        const char* kind = e->begin > pos ? "hole" : "overlap";
        if (prev == nullptr) fail("first tensor '", e->name, "' starts at data offset ", e->begin, ", not 0 (", kind, ")");
        fail("tensor '", e->name, "' starts at data offset ", e->begin, " but the previous tensor '", prev->name,
             "' ends at ", pos, " (", kind, " between tensors)");
      }
      pos = e->end;
      prev = e;
    }
    if (pos < data_size)
      fail(data_size - pos, " trailing byte(s) after the last tensor (data section is ", data_size,
           " bytes, tensors end at ", pos, ")");
    std::sort(entries_.begin(), entries_.end(),
              [](const tensor_entry& a, const tensor_entry& b) { return a.name < b.name; });
  }

  tensor_entry parse_entry(const std::string& name, const nlohmann::json& v, std::size_t data_size) const {
    if (!v.is_object()) fail("entry '", name, "' is not a JSON object");
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        fail("entry '", name, "' has an unexpected field '", f.key(), "'");
    }
    tensor_entry e;
    e.name = name;

    const auto dt = v.find("dtype");
    if (dt == v.end()) fail("entry '", name, "' is missing 'dtype'");
    if (!dt->is_string()) fail("entry '", name, "': 'dtype' is not a string");
    const std::string& dname = dt->get_ref<const std::string&>();
    if (!st_dtype_from_name(dname, e.dtype)) fail("entry '", name, "' has unknown dtype '", dname, "'");

    const auto sh = v.find("shape");
    if (sh == v.end()) fail("entry '", name, "' is missing 'shape'");
    if (!sh->is_array()) fail("entry '", name, "': 'shape' is not an array");
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned())
        fail("entry '", name, "': 'shape' holds ", json_excerpt(d), ", not a non-negative integer");
      e.shape.push_back(static_cast<std::size_t>(d.get<std::uint64_t>()));
    }
    std::size_t numel = 0, nbytes = 0;
    if (!checked_product(e.shape.begin(), e.shape.end(), numel) || !checked_mul(numel, st_dtype_size(e.dtype), nbytes))
      fail("entry '", name, "': shape ", json_excerpt(*sh), " of ", dname, " overflows the size of a tensor in bytes");

    const auto off = v.find("data_offsets");
    if (off == v.end()) fail("entry '", name, "' is missing 'data_offsets'");
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      fail("entry '", name, "': 'data_offsets' is ", json_excerpt(*off),
           ", not [begin, end] with non-negative integers");
    const std::uint64_t b = (*off)[0].get<std::uint64_t>();
    const std::uint64_t en = (*off)[1].get<std::uint64_t>();
    if (b > en) fail("entry '", name, "': data_offsets [", b, ", ", en, "] has begin > end");
    if (en > data_size)
      fail("entry '", name, "': data_offsets end ", en, " runs past the end of the data section (", data_size,
           " bytes; file truncated?)");
    if (en - b != nbytes)
      fail("entry '", name, "': data_offsets [", b, ", ", en, "] span ", en - b, " bytes but shape ", json_excerpt(*sh),
           " of ", dname, " needs ", nbytes);
    e.begin = static_cast<std::size_t>(b);
    e.end = static_cast<std::size_t>(en);
    return e;
  }

  std::string source_;
  std::vector<std::byte> bytes_;
  std::size_t data_start_ = 0;
  std::vector<tensor_entry> entries_;
  std::map<std::string, std::string> metadata_;
};

inline safetensors_file load_safetensors(const std::filesystem::path& path) { return safetensors_file::load(path); }

class safetensors_writer {
 public:
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // Store `data` (row-major, product(shape) values) as dtype `as`: F32 (default), F64, F16, BF16,
  // or an integer / BOOL dtype for integer sources.
  template <class T>
  void add(std::string name, std::vector<std::size_t> shape, std::span<const T> data, st_dtype as = st_default_dtype<T>()) {
    static_assert(std::is_arithmetic_v<T>, "safetensors_writer::add takes arithmetic values");
    check_new(name);
    const std::size_t n = element_count("safetensors_writer::add", name, shape);
    CPDIFF_CHECK(n == data.size(), shape_error, "safetensors_writer::add", "tensor '", name, "' has ", data.size(),
                 " values but shape ", shape_text(shape), " needs ", n);
    CPDIFF_CHECK(st_dtype_writable(as), config_error, "safetensors_writer::add", "cannot write dtype ",
                 st_dtype_name(as), " (tensor '", name, "')");
    CPDIFF_CHECK(std::is_floating_point_v<T> ? st_dtype_is_float(as) : true, config_error, "safetensors_writer::add",
                 "tensor '", name, "': floating-point values cannot be stored as ", st_dtype_name(as));
    pending p{as, std::move(shape), std::vector<std::byte>(n * st_dtype_size(as))};
    const std::size_t w = st_dtype_size(as);
    for (std::size_t i = 0; i < n; ++i) st_encode(as, data[i], p.data.data() + i * w);
    tensors_.emplace(std::move(name), std::move(p));
  }
  template <class T>
  void add(std::string name, std::vector<std::size_t> shape, const std::vector<T>& data, st_dtype as = st_default_dtype<T>()) {
    add(std::move(name), std::move(shape), std::span<const T>(data), as);
  }
  // cpdiff::shape overloads (templated on S so that a braced shape `{2, 3}` picks the vector ones).
  template <class T, std::same_as<cpdiff::shape> S>
  void add(std::string name, const S& s, std::span<const T> data, st_dtype as = st_default_dtype<T>()) {
    add(std::move(name), std::vector<std::size_t>(s.begin(), s.end()), data, as);
  }
  template <class T, std::same_as<cpdiff::shape> S>
  void add(std::string name, const S& s, const std::vector<T>& data, st_dtype as = st_default_dtype<T>()) {
    add(std::move(name), std::vector<std::size_t>(s.begin(), s.end()), std::span<const T>(data), as);
  }
  // Little-endian bytes already in `dtype` (any dtype, including the F8 kinds).
  void add_raw(std::string name, st_dtype dtype, std::vector<std::size_t> shape, std::span<const std::byte> bytes) {
    check_new(name);
    const std::size_t n = element_count("safetensors_writer::add_raw", name, shape);
    CPDIFF_CHECK(n * st_dtype_size(dtype) == bytes.size(), shape_error, "safetensors_writer::add_raw", "tensor '",
                 name, "' has ", bytes.size(), " bytes but shape ", shape_text(shape), " of ", st_dtype_name(dtype),
                 " needs ", n * st_dtype_size(dtype));
    tensors_.emplace(std::move(name), pending{dtype, std::move(shape), std::vector<std::byte>(bytes.begin(), bytes.end())});
  }

  std::size_t size() const { return tensors_.size(); }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }

  // The 8-byte length and the padded header.
  std::string header_bytes() const {
    // Entries are encoded one by one and joined (an ordered_json lookup per key would be quadratic).
    std::string text = "{";
    try {
      if (!metadata_.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata_) m[k] = v;
        text += "\"__metadata__\":" + m.dump();
      }
      std::size_t pos = 0;
      for (const auto& [name, p] : tensors_) {
        nlohmann::ordered_json e = nlohmann::ordered_json::object();
        e["dtype"] = st_dtype_name(p.dtype);
        e["shape"] = p.shape;
        e["data_offsets"] = {pos, pos + p.data.size()};
        pos += p.data.size();
        text += (text.size() > 1 ? "," : "") + nlohmann::ordered_json(name).dump() + ":" + e.dump();
      }
    } catch (const nlohmann::json::exception& ex) {
      throw_error<io_error>("safetensors_writer", "cannot encode the header: ", ex.what());
    }
    text += "}";
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    const std::uint64_t n = text.size();
    std::memcpy(out.data(), &n, 8);
    return out + text;
  }

  std::vector<std::byte> to_bytes() const {
    const std::string head = header_bytes();
    std::vector<std::byte> out(reinterpret_cast<const std::byte*>(head.data()),
                               reinterpret_cast<const std::byte*>(head.data()) + head.size());
    for (const auto& [name, p] : tensors_) out.insert(out.end(), p.data.begin(), p.data.end());
    return out;
  }

  // Atomic: the target is replaced only once the whole file is written and flushed.
  void save(const std::filesystem::path& path) const {
    const std::string head = header_bytes();
    atomic_file_writer w(path);
    w.write(head);
    for (const auto& [name, p] : tensors_) w.write(std::span<const std::byte>(p.data));
    w.commit();
  }

 private:
  struct pending {
    st_dtype dtype;
    std::vector<std::size_t> shape;
    std::vector<std::byte> data;
  };
  void check_new(const std::string& name) const {
    CPDIFF_CHECK(name != "__metadata__", config_error, "safetensors_writer", "'__metadata__' is reserved, not a tensor name");
    CPDIFF_CHECK(tensors_.count(name) == 0, config_error, "safetensors_writer", "duplicate tensor name '", name, "'");
  }
  static std::size_t element_count(const char* where, const std::string& name, const std::vector<std::size_t>& s) {
    std::size_t n = 0, bytes = 0;
    CPDIFF_CHECK(checked_product(s.begin(), s.end(), n) && checked_mul(n, 8, bytes), shape_error, where, "tensor '",
                 name, "': shape ", shape_text(s), " overflows");
    return n;
  }
  static std::string shape_text(const std::vector<std::size_t>& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
  }

  std::map<std::string, pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace cpdiff::io
