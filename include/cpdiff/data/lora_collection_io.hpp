#pragma once
// lora_collection::save / load: the folder format described in data/lora_collection.hpp.
// Included by lora_collection.hpp; not meant to be included on its own.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>


#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/atomic_folder.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/peft.hpp"

namespace cpdiff::data {

namespace detail {
template <class... Args>
[[noreturn]] void collection_fail(const std::filesystem::path& file, Args&&... args) {
  throw_error<io_error>("data::lora_collection::load", "'", file.string(), "': ", std::forward<Args>(args)...);
}

// A float32 .npy file of exactly `shape`; anything else is an io_error naming the file.
inline std::vector<float> read_f32_matrix(const std::filesystem::path& file, std::size_t rows, std::size_t cols) {
  const std::vector<std::byte> bytes = io::read_file_bytes(file);
  const io::npy_header h = io::read_npy_header(bytes, file.string());
  if (h.kind != 'f' || h.itemsize != 4) collection_fail(file, "expected float32 data, the file holds another dtype");
  if (h.shape != std::vector<std::size_t>{rows, cols}) {
    std::string got;
    for (std::size_t d : h.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    collection_fail(file, "expected shape [", rows, ", ", cols, "] (from ", lora_collection::index_file,
                    "), the file holds [", got, "]");
  }
  return io::load_npy_bytes<float>(bytes, file.string()).data;
}

// A tensor's "shape" from the index: a list of non-negative integers (a plain conversion would wrap -1 to
// 2^64 - 1 and cut 1.9 to 1).
inline std::vector<std::size_t> read_dims(const std::filesystem::path& index, const std::string& tensor,
                                          const nlohmann::json& t) {
  const auto it = t.find("shape");
  if (it == t.end() || !it->is_array())
    collection_fail(index, "tensor '", tensor, "': 'shape' is missing or not a list");
  std::vector<std::size_t> dims;
  for (const auto& d : *it) {
    if (!d.is_number_unsigned())
      collection_fail(index, "tensor '", tensor, "': shape entry ", io::json_excerpt(d),
                      " is not a non-negative integer");
    dims.push_back(d.get<std::size_t>());
  }
  return dims;
}

}  // namespace detail

// The whole set to a fresh folder, then swapped into place (io/atomic_folder.hpp): a reader sees the old
// collection or the new one. An existing folder is replaced only when it is empty or holds an index.json.
inline void lora_collection::save(const std::filesystem::path& folder) const {
  io::write_folder_atomic(folder, [&](const std::filesystem::path& tmp) { write_files(tmp); }, index_file,
                          "data::lora_collection::save");
}

// The set's files, into an existing folder.
inline void lora_collection::write_files(const std::filesystem::path& folder) const {
  nlohmann::json j;
  j["format"] = "cpdiff.lora_collection";
  j["version"] = 1;
  j["dim"] = dim();
  j["std_floor"] = floor_;
  j["adapter"] = {{"r", layout_.rank()},
                  {"lora_alpha", layout_.alpha()},
                  {"use_rslora", layout_.use_rslora()},
                  {"lora_dropout", layout_.dropout()},
                  {"target_modules", layout_.target_modules()}};
  j["tensors"] = nlohmann::json::array();
  for (const auto& s : layout_.slots())
    j["tensors"].push_back({{"name", s.name},
                            {"module", s.module},
                            {"kind", std::string(1, s.which)},
                            {"shape", std::vector<std::size_t>(s.shape.begin(), s.shape.end())},
                            {"offset", s.offset}});
  j["feature_dim"] = feature_dim_;
  j["conditions"] = nlohmann::json::array();
  std::vector<float> feats;
  for (std::size_t c = 0; c < conds_.size(); ++c) {
    const auto& cd = conds_[c];
    const std::string file = condition_file(c);
    io::save_npy<float>(folder / file, std::vector<std::size_t>{cd.count, dim()}, cd.data);
    j["conditions"].push_back({{"name", cd.name}, {"file", file}, {"checkpoints", cd.count}});
    feats.insert(feats.end(), cd.features.begin(), cd.features.end());
  }
  if (feature_dim_ > 0) io::save_npy<float>(folder / features_file, {conds_.size(), feature_dim_}, feats);
  io::write_file_atomic(folder / index_file, j.dump(1) + "\n");
}

inline lora_collection lora_collection::load(const std::filesystem::path& folder) {
  try {
    return load_unchecked(folder);
  } catch (const nlohmann::json::exception& e) {  // a list element of the wrong type, ...
    detail::collection_fail(folder / index_file, "malformed: ", e.what());
  }
}

inline lora_collection lora_collection::load_unchecked(const std::filesystem::path& folder) {
  using detail::collection_fail;
  CPDIFF_CHECK(std::filesystem::is_directory(folder), io_error, "data::lora_collection::load", "'", folder.string(),
               "' is not a folder (expected one holding ", index_file, ")");
  const auto index = folder / index_file;
  io::json_parse_result parsed = io::parse_json(io::read_file_text(index));
  if (!parsed.ok()) collection_fail(index, "not valid JSON: ", parsed.error);
  nlohmann::json j = std::move(parsed.value);
  // Typed field access; a missing field or a wrong type is an io_error naming the index file.
  auto get = [&](const nlohmann::json& o, const char* key, auto kind) {
    using V = decltype(kind);
    if (!o.is_object() || !o.contains(key)) collection_fail(index, "missing field '", key, "'");
    const auto& v = o.at(key);
    bool ok;
    if constexpr (std::is_same_v<V, bool>) ok = v.is_boolean();
    else if constexpr (std::is_same_v<V, std::size_t>) ok = v.is_number_unsigned();
    else if constexpr (std::is_same_v<V, double>) ok = v.is_number();
    else if constexpr (std::is_same_v<V, std::string>) ok = v.is_string();
    else ok = v.is_array();
    if (!ok) collection_fail(index, "field '", key, "' has the wrong type: ", io::json_excerpt(v));
    return v.template get<V>();
  };
  using strings = std::vector<std::string>;
  using sizes = std::vector<std::size_t>;
  if (!j.is_object() || !j.contains("format") || j["format"] != "cpdiff.lora_collection")
    collection_fail(index, "not a cpdiff.lora_collection index (field 'format')");
  if (get(j, "version", std::size_t{}) != 1)
    collection_fail(index, "unsupported version ", io::json_excerpt(j["version"]));
  const nlohmann::json ad = j.contains("adapter") ? j["adapter"] : nlohmann::json();
  const std::size_t rank = get(ad, "r", std::size_t{});
  std::vector<lora_tensor_slot> slots;
  std::vector<std::size_t> offsets;
  const nlohmann::json tensors = j.contains("tensors") ? j["tensors"] : nlohmann::json();
  if (!tensors.is_array() || tensors.empty()) collection_fail(index, "field 'tensors' is missing or empty");
  for (const auto& t : tensors) {
    const std::string name = get(t, "name", std::string{}), kind = get(t, "kind", std::string{});
    if (kind != "A" && kind != "B") collection_fail(index, "tensor kind '", kind, "' is not \"A\" or \"B\"");
    const sizes sh = detail::read_dims(index, name, t);
    if (sh.size() != 2) collection_fail(index, "tensor '", name, "' is not 2-D");
    slots.push_back({name, get(t, "module", std::string{}), kind[0], shape{sh[0], sh[1]}, 0});
    offsets.push_back(get(t, "offset", std::size_t{}));
  }
  lora_layout layout;
  try {
    layout = lora_layout(rank, get(ad, "lora_alpha", double{}), get(ad, "use_rslora", bool{}),
                         get(ad, "lora_dropout", double{}), get(ad, "target_modules", strings{}), std::move(slots));
  } catch (const error& e) {
    collection_fail(index, "inconsistent tensor list: ", e.what());
  }
  // the adapter fields a PEFT adapter_config.json must satisfy too (io/peft.hpp), so that save_peft's folders load
  if (!(layout.alpha() > 0) || !std::isfinite(layout.alpha()))
    collection_fail(index, "'adapter.lora_alpha' is ", layout.alpha(), ", not a number > 0");
  if (!(layout.dropout() >= 0 && layout.dropout() < 1))
    collection_fail(index, "'adapter.lora_dropout' is ", layout.dropout(), ", not a number in [0, 1)");
  if (!layout.target_modules().empty()) {
    std::vector<std::string> modules;
    for (const auto& slot : layout.slots())
      if (slot.which == 'A') modules.push_back(slot.module);
    if (const auto miss = lora::detail::find_target_mismatch(modules, layout.target_modules())) {
      if (!miss->module.empty())
        collection_fail(index, "'adapter.target_modules' does not name module '", miss->module, "'");
      collection_fail(index, "'adapter.target_modules' names '", miss->target, "', which no module matches");
    }
  }
  for (std::size_t i = 0; i < offsets.size(); ++i)
    if (offsets[i] != layout.slots()[i].offset)
      collection_fail(index, "tensor '", layout.slots()[i].name, "': offset ", offsets[i], " differs from ",
                      layout.slots()[i].offset, " (tensors must be listed sorted by name and packed)");
  const std::size_t N = get(j, "dim", std::size_t{});
  if (N != layout.size()) collection_fail(index, "'dim' is ", N, " but the tensors hold ", layout.size(), " values");
  const double floor = get(j, "std_floor", double{});
  if (!(floor > 0) || !std::isfinite(floor)) collection_fail(index, "'std_floor' must be finite and > 0");
  lora_collection out = [&] {
    try {
      return lora_collection(std::move(layout), floor);
    } catch (const error& e) {
      collection_fail(index, e.what());
    }
  }();

  const std::size_t F = get(j, "feature_dim", std::size_t{});
  const nlohmann::json conds = j.contains("conditions") ? j["conditions"] : nlohmann::json();
  if (!conds.is_array()) collection_fail(index, "field 'conditions' is missing or not a list");
  std::vector<float> feats;
  if (F > 0) feats = detail::read_f32_matrix(folder / features_file, conds.size(), F);
  for (std::size_t c = 0; c < conds.size(); ++c) {
    const std::string name = get(conds[c], "name", std::string{}), file = get(conds[c], "file", std::string{});
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      collection_fail(index, "condition '", name, "': file '", file, "' is not a plain file name");
    const std::size_t K = get(conds[c], "checkpoints", std::size_t{});
    std::vector<float> f(feats.begin() + static_cast<std::ptrdiff_t>(c * F),
                         feats.begin() + static_cast<std::ptrdiff_t>((c + 1) * F));
    try {
      out.add_condition(name, std::move(f));
    } catch (const config_error& e) {
      collection_fail(index, e.what());
    }
    auto& cd = out.conds_.back();
    cd.data = detail::read_f32_matrix(folder / file, K, N);
    cd.count = K;
  }
  out.feature_dim_ = F;
  return out;
}

}  // namespace cpdiff::data
