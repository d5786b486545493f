#pragma once
// A model's weights alone, apart from trainer checkpoints: one safetensors file with every parameter
// (trainable and frozen, e.g. BatchNorm running statistics) under its store name, in the model's dtype,
// and the model's configuration in __metadata__ so that loading into another model is refused.
//   save_weights("ae.safetensors", ae);      // ae.parameters(), and ae.describe() when the model has it
//   load_weights("ae.safetensors", ae2);     // io_error: other configuration, missing or extra tensors,
//                                            // another dtype, a NaN or infinite value; shape_error: a tensor
//                                            // of another shape. Nothing changes unless everything matches.
//   std::cout << parameter_summary(ae.parameters());   // per module and in total
// Written atomically (temporary file + rename). The files load in PyTorch with safetensors.torch.load_file.
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff {

inline constexpr const char* weights_format = "cpdiff.weights.v1";

namespace weights_detail {
template <class T>
constexpr io::st_dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cpdiff weights files hold float or double");
  return std::is_same_v<T, float> ? io::st_dtype::F32 : io::st_dtype::F64;
}
template <class M>
std::string description_of(M& m) {
  if constexpr (requires { m.describe(); })
    return m.describe();
  else
    return "";
}

inline bool every_entry(const std::string&) { return true; }

// The store's entries whose names `keep` accepts, as tensors of w in dtype `as`.
template <class T, class B, class Keep>
void add_entries(io::safetensors_writer& w, parameter_store<T, B>& ps, Keep&& keep, io::st_dtype as) {
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entry(param_id{i});
    if (!keep(e.name)) continue;
    const std::vector<T> host = to_host(ps.backend(), tensor_view<const T, memory_space_t<B>>(ps.value(param_id{i})));
    w.add(e.name, e.shape, host, as);
  }
}

// Copies f's tensors into the store's entries that `keep` accepts, after checking that f holds exactly those
// names with the same shapes (io_error naming missing and unexpected tensors, shape_error naming one tensor), every
// value finite once decoded (io_error naming the tensor) and, with `exact` (a cpdiff weights file), in the store's
// dtype (a Hugging Face file may be F16 / BF16: converted): nothing changes unless everything matches.
template <class T, class B, class Keep>
void load_entries(const io::safetensors_file& f, const std::filesystem::path& path, parameter_store<T, B>& ps,
                  Keep&& keep, const char* where, bool exact = false) {
  std::set<std::string> expected, found;
  for (const auto& e : ps.entries())
    if (keep(e.name)) expected.insert(e.name);
  for (const auto& t : f.tensors()) found.insert(t.name);
  std::vector<std::string> missing, extra;
  for (const auto& n : expected)
    if (!found.count(n)) missing.push_back(n);
  for (const auto& n : found)
    if (!expected.count(n)) extra.push_back(n);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
    return v.size() > 5 ? s + ", ... (" + std::to_string(v.size()) + " in all)" : s;
  };
  CPDIFF_CHECK(missing.empty() && extra.empty(), io_error, where, "'", path.string(), "' does not match the model: ",
               missing.empty() ? "" : "missing " + list(missing), missing.empty() || extra.empty() ? "" : "; ",
               extra.empty() ? "" : "unexpected " + list(extra));
  // Every kept entry checked and decoded once (store order), then copied in.
  std::vector<std::pair<param_id, std::vector<T>>> decoded;
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entry(param_id{i});
    if (!keep(e.name)) continue;
    const auto& t = f.at(e.name);
    const shape file_shape = shape::from_range(t.shape.begin(), t.shape.end());
    CPDIFF_CHECK(file_shape == e.shape, shape_error, where, "'", path.string(), "': tensor '", e.name, "' has shape ",
                 file_shape, ", the model's is ", e.shape);
    CPDIFF_CHECK(!exact || t.dtype == dtype_of<T>(), io_error, where, "'", path.string(), "': tensor '", e.name,
                 "' is ", io::st_dtype_name(t.dtype), ", the model's dtype is ", io::st_dtype_name(dtype_of<T>()),
                 " (load the file into a model of the dtype it was saved from)");
    std::vector<T> v;
    if constexpr (std::is_same_v<T, float>)
      v = f.to_f32(e.name);
    else
      v = f.to_f64(e.name);
    // Finite, as after any good training step (the trainers refuse a non-finite loss; checkpoints the same).
    for (std::size_t k = 0; k < v.size(); ++k)
      CPDIFF_CHECK(std::isfinite(v[k]), io_error, where, "'", path.string(), "': tensor '", e.name, "' holds ", v[k],
                   " at index ", k, " (the weights of a diverged run?); a model's weights must be finite");
    decoded.emplace_back(param_id{i}, std::move(v));
  }
  for (const auto& [id, v] : decoded) from_host(ps.backend(), std::span<const T>(v), ps.value(id));
}
}  // namespace weights_detail

// Every entry of the store, with `config` (any text; a model's describe()) recorded as __metadata__ "config".
template <class T, class B>
void save_weights(const std::filesystem::path& path, parameter_store<T, B>& ps, const std::string& config = "") {
  io::safetensors_writer w;
  w.set_metadata("format", weights_format);
  w.set_metadata("config", config);
  weights_detail::add_entries(w, ps, weights_detail::every_entry, weights_detail::dtype_of<T>());
  w.save(path);
}

// Checks the file against the store (format, config, names, shapes, dtype, finite values) before copying anything in.
template <class T, class B>
void load_weights(const std::filesystem::path& path, parameter_store<T, B>& ps, const std::string& config = "") {
  constexpr const char* where = "load_weights";
  const io::safetensors_file f = io::load_safetensors(path);
  const auto& md = f.metadata();
  const auto fmt = md.find("format");
  CPDIFF_CHECK(fmt != md.end() && fmt->second == weights_format, io_error, where, "'", path.string(),
               "' is not a cpdiff weights file (__metadata__ format = '", fmt == md.end() ? "" : fmt->second,
               "', expected '", weights_format, "'); a trainer checkpoint loads with the trainer's resume()");
  const auto cfg = md.find("config");
  const std::string file_config = cfg == md.end() ? "" : cfg->second;
  CPDIFF_CHECK(file_config == config, io_error, where, "'", path.string(), "' holds the weights of the model ",
               file_config.empty() ? "(no configuration recorded)" : file_config, ", not of this one: ",
               config.empty() ? "(no configuration given)" : config);
  weights_detail::load_entries(f, path, ps, weights_detail::every_entry, where, true);
}

// A model: its parameters() and, when it has one, its describe().
template <class M>
  requires requires(M& m) { m.parameters(); }
void save_weights(const std::filesystem::path& path, M& model) {
  save_weights(path, model.parameters(), weights_detail::description_of(model));
}
template <class M>
  requires requires(M& m) { m.parameters(); }
void load_weights(const std::filesystem::path& path, M& model) {
  load_weights(path, model.parameters(), weights_detail::description_of(model));
}

// Parameter counts per module (the names' first `depth` dot-separated parts) and in total, as a table:
//   module        parameters   trainable
//   encoder           12,345      12,345
//   ...
//   total             45,678      45,678
template <class T, class B>
std::string parameter_summary(const parameter_store<T, B>& ps, std::size_t depth = 1) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::size_t, std::size_t>> counts;
  for (const auto& e : ps.entries()) {
    std::size_t cut = 0;
    for (std::size_t d = 0; d < depth && cut != std::string::npos; ++d) cut = e.name.find('.', cut ? cut + 1 : 0);
    const std::string module = cut == std::string::npos ? e.name : e.name.substr(0, cut);
    if (!counts.count(module)) order.push_back(module);
    counts[module].first += e.shape.size();
    if (e.trainable) counts[module].second += e.shape.size();
  }
  auto grouped = [](std::size_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
  };
  std::size_t width = 6;
  for (const auto& m : order) width = std::max(width, m.size());
  std::ostringstream out;
  out << std::left << std::setw(static_cast<int>(width)) << "module" << std::right << std::setw(14) << "parameters"
      << std::setw(14) << "trainable" << "\n";
  std::size_t all = 0, trainable = 0;
  for (const auto& m : order) {
    out << std::left << std::setw(static_cast<int>(width)) << m << std::right << std::setw(14)
        << grouped(counts[m].first) << std::setw(14) << grouped(counts[m].second) << "\n";
    all += counts[m].first;
    trainable += counts[m].second;
  }
  out << std::left << std::setw(static_cast<int>(width)) << "total" << std::right << std::setw(14) << grouped(all)
      << std::setw(14) << grouped(trainable) << "\n";
  return out.str();
}

}  // namespace cpdiff
