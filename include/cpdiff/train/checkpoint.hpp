#pragma once
// Training checkpoints as one safetensors file: named tensors (parameters, optimiser and EMA state in
// the model's own dtype, so a resumed run continues bit for bit), rank-0 U64 / F64 tensors for
// counters and scalars, rank-1 ones for histories, and a __metadata__ that says which trainer wrote it.
// Writing is atomic (temporary file + rename, io/atomic_file.hpp): a crash mid-save leaves the previous
// checkpoint intact.
//
// Reading is two-phase so a bad file changes nothing: expect*() lists every name, dtype and shape the
// trainer needs, verify() checks the file against that list (a checkpoint of another model has missing
// or extra names: io_error naming them; same names with other shapes: shape_error naming the tensor and
// both shapes) and the values a trainer can have written (finite tensors, no negative "exp_avg_sq":
// io_error naming the tensor and the element); only then do read*() copy values in.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/optim/optimizer_state.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::train {

template <class T, class Space>
using named_tensors = std::vector<optim::named_buffer<T, Space>>;

// The exact safetensors dtype of a model's value type.
template <class T>
constexpr io::st_dtype exact_dtype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cpdiff::train checkpoints store float (F32) or double (F64) models");
  return std::is_same_v<T, float> ? io::st_dtype::F32 : io::st_dtype::F64;
}

// Every entry of a store (trainable or frozen) as "<prefix><name>".
template <class T, class B>
named_tensors<T, memory_space_t<B>> store_tensors(parameter_store<T, B>& ps, const std::string& prefix) {
  named_tensors<T, memory_space_t<B>> out;
  for (std::size_t i = 0; i < ps.count(); ++i)
    out.push_back({prefix + ps.entry(param_id{i}).name, ps.value(param_id{i})});
  return out;
}
// The same buffers with a prefix on their names (an optimiser's or EMA's state()).
template <class T, class S>
named_tensors<T, S> with_prefix(std::vector<optim::named_buffer<T, S>> bufs, const std::string& prefix) {
  for (auto& b : bufs) b.name = prefix + b.name;
  return bufs;
}

class checkpoint_writer {
 public:
  template <class T, class S, class B>
  void add(const B& be, const named_tensors<T, S>& bufs) {
    for (const auto& b : bufs) {
      const std::vector<T> host = to_host(be, tensor_view<const T, S>(b.data));
      w_.add(b.name, b.data.shape(), host, exact_dtype<T>());
    }
  }
  // Rank-0 scalars and rank-1 vectors, exact: counters as U64, reals as F64.
  void add_u64(const std::string& name, std::uint64_t v) { add_u64s(name, {v}, {}); }
  void add_f64(const std::string& name, double v) { add_f64s(name, {v}, {}); }
  void add_u64s(const std::string& name, const std::vector<std::uint64_t>& v) { add_u64s(name, v, {v.size()}); }
  void add_f64s(const std::string& name, const std::vector<double>& v) { add_f64s(name, v, {v.size()}); }
  void set_metadata(std::string key, std::string value) { w_.set_metadata(std::move(key), std::move(value)); }
  void save(const std::filesystem::path& path) const { w_.save(path); }

 private:
  void add_u64s(const std::string& name, const std::vector<std::uint64_t>& v, std::vector<std::size_t> dims) {
    w_.add(name, std::move(dims), v, io::st_dtype::U64);
  }
  void add_f64s(const std::string& name, const std::vector<double>& v, std::vector<std::size_t> dims) {
    w_.add(name, std::move(dims), v, io::st_dtype::F64);
  }
  io::safetensors_writer w_;
};

class checkpoint_reader {
 public:
  explicit checkpoint_reader(const std::filesystem::path& path) : f_(io::load_safetensors(path)) {}

  const std::string& source() const { return f_.source(); }
  const std::map<std::string, std::string>& metadata() const { return f_.metadata(); }
  // The checkpoint's __metadata__ must hold key = value (the trainer kind, the format).
  void expect_metadata(const std::string& key, const std::string& value) const {
    const auto it = f_.metadata().find(key);
    CPDIFF_CHECK(it != f_.metadata().end() && it->second == value, io_error, "train::checkpoint",
                 "'", f_.source(), "': expected __metadata__ ", key, " = '", value, "', found ",
                 it == f_.metadata().end() ? std::string("none") : "'" + it->second + "'",
                 " (not a checkpoint of this kind of trainer)");
  }
  // The model the checkpoint was written for (its describe(): configuration and sizes) must be this one:
  // an autoencoder for another vector length has the same parameter shapes but is another model.
  void expect_model(const std::string& description) const {
    const auto it = f_.metadata().find("model");
    CPDIFF_CHECK(it != f_.metadata().end() && it->second == description, io_error, "train::checkpoint",
                 "'", f_.source(), "' was written for the model ",
                 it == f_.metadata().end() ? std::string("(not recorded)") : it->second, ", this trainer's model is ",
                 description, ": build the model with the checkpoint's configuration, or start a new run");
  }

  // Record what the trainer needs; verify() checks it all at once.
  template <class T, class S>
  void expect(const named_tensors<T, S>& bufs) {
    for (const auto& b : bufs) want_.push_back({b.name, exact_dtype<T>(), b.data.shape(), kind::tensor});
  }
  void expect_u64(const std::string& name) { want_.push_back({name, io::st_dtype::U64, {}, kind::scalar}); }
  void expect_f64(const std::string& name) { want_.push_back({name, io::st_dtype::F64, {}, kind::scalar}); }
  void expect_u64s(const std::string& name) { want_.push_back({name, io::st_dtype::U64, {}, kind::vector}); }
  void expect_f64s(const std::string& name) { want_.push_back({name, io::st_dtype::F64, {}, kind::vector}); }

  // Names first (missing ones, then ones nobody expects: both mean another model or other options),
  // then dtypes, then shapes.
  void verify() const {
    std::set<std::string> wanted;
    std::vector<std::string> missing, extra;
    for (const auto& w : want_) {
      wanted.insert(w.name);
      if (!f_.contains(w.name)) missing.push_back(w.name);
    }
    for (const auto& e : f_.tensors())
      if (wanted.count(e.name) == 0) extra.push_back(e.name);
    CPDIFF_CHECK(missing.empty(), io_error, "train::checkpoint", "'", f_.source(), "': missing ", list(missing),
                 " (a checkpoint of another model, or written with other options?)");
    CPDIFF_CHECK(extra.empty(), io_error, "train::checkpoint", "'", f_.source(), "': unexpected ", list(extra),
                 ", not part of this trainer (a checkpoint of another model, or written with other options?)");
    for (const auto& w : want_) {
      const io::tensor_entry& e = f_.at(w.name);
      CPDIFF_CHECK(e.dtype == w.dtype, io_error, "train::checkpoint", "'", f_.source(), "': tensor '", w.name, "' is ",
                   io::st_dtype_name(e.dtype), ", expected ", io::st_dtype_name(w.dtype));
      const shape s = shape::from_range(e.shape.begin(), e.shape.end());
      if (w.what == kind::tensor)
        CPDIFF_CHECK(s == w.dims, shape_error, "train::checkpoint", "'", f_.source(), "': tensor '", w.name,
                     "' has shape ", s, " but this trainer's is ", w.dims, " (a checkpoint of another model?)");
      else
        CPDIFF_CHECK(s.rank() == (w.what == kind::vector ? 1u : 0u), shape_error, "train::checkpoint", "'",
                     f_.source(), "': tensor '", w.name, "' should be ",
                     w.what == kind::vector ? "rank 1" : "a rank-0 scalar", ", has shape ", s);
    }
    for (const auto& w : want_)
      if (w.what == kind::tensor) check_values(w.name);
  }

  template <class T, class S, class B>
  void read(const B& be, const named_tensors<T, S>& bufs) const {
    for (const auto& b : bufs) {
      const std::span<const std::byte> raw = f_.raw(b.name);
      std::vector<T> host(b.data.size());
      if (!host.empty()) std::memcpy(host.data(), raw.data(), raw.size());
      from_host(be, std::span<const T>(host), b.data);
    }
  }
  std::uint64_t u64(const std::string& name) const { return values<std::uint64_t>(name).at(0); }
  double f64(const std::string& name) const { return values<double>(name).at(0); }
  std::vector<std::uint64_t> u64s(const std::string& name) const { return values<std::uint64_t>(name); }
  std::vector<double> f64s(const std::string& name) const { return values<double>(name); }

 private:
  enum class kind { tensor, scalar, vector };
  struct wanted {
    std::string name;
    io::st_dtype dtype;
    cpdiff::shape dims;  // tensors only
    kind what;
  };
  // "tensor 'a'" or "3 tensors: 'a', 'b', 'c'" (at most 5 named)
  static std::string list(const std::vector<std::string>& names) {
    std::string out = names.size() == 1 ? "tensor " : std::to_string(names.size()) + " tensors: ";
    for (std::size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 5) out += ", ...";
    return out;
  }

  // Parameters and optimiser / EMA state are finite after any good step, and a second moment is >= 0.
  void check_values(const std::string& name) const {
    const bool moment = name.ends_with(".exp_avg_sq");
    const std::span<const std::byte> raw = f_.raw(name);
    if (f_.at(name).dtype == io::st_dtype::F32) check_values<float>(name, raw, moment);
    else check_values<double>(name, raw, moment);
  }
  template <class V>
  void check_values(const std::string& name, std::span<const std::byte> raw, bool moment) const {
    for (std::size_t i = 0; i < raw.size() / sizeof(V); ++i) {
      V v;
      std::memcpy(&v, raw.data() + i * sizeof(V), sizeof(V));
      CPDIFF_CHECK(std::isfinite(v) && !(moment && v < 0), io_error, "train::checkpoint", "'", f_.source(),
                   "': tensor '", name, "' holds ", v, " at element ", i, ", expected ",
                   moment ? "a finite value >= 0 (a second moment)" : "a finite value",
                   " (a trainer saves the state after its last good step)");
    }
  }

  template <class V>
  std::vector<V> values(const std::string& name) const {
    constexpr io::st_dtype want = std::is_same_v<V, double> ? io::st_dtype::F64 : io::st_dtype::U64;
    CPDIFF_CHECK(f_.at(name).dtype == want, io_error, "train::checkpoint", "'", f_.source(), "': tensor '", name,
                 "' is ", io::st_dtype_name(f_.at(name).dtype), ", expected ", io::st_dtype_name(want));
    const std::span<const std::byte> raw = f_.raw(name);
    std::vector<V> out(raw.size() / sizeof(V));
    if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(V));
    return out;
  }

  io::safetensors_file f_;
  std::vector<wanted> want_;
};

}  // namespace cpdiff::train
