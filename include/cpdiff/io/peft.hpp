#pragma once
// PEFT's on-disk LoRA layout (Hugging Face peft, `save_pretrained` / `from_pretrained`):
//   <folder>/adapter_model.safetensors   base_model.model.<module>.lora_A.weight [r, in]   F32
//                                        base_model.model.<module>.lora_B.weight [out, r]  F32
//                                        metadata {"format": "pt"}
//   <folder>/adapter_config.json         {"peft_type": "LORA", "r": ..., "lora_alpha": ..., ...}
// The two files are written atomically as a set (io/atomic_folder.hpp's update_folder_atomic): a reader sees the
// old pair or the new one, never a mix, and the folder's other files (a Trainer checkpoint's) are kept.
// The reader applies PEFT's defaults to absent config fields (r 8, lora_alpha 8, lora_dropout 0, use_rslora
// false) and rejects what a lora::adapter cannot represent (fan_in_fan_out, bias other than "none", per-module
// rank/alpha patterns, DoRA, keys other than A/B pairs) with an io_error naming the file and the field or key;
// shapes inconsistent with r are a shape_error naming the file and the key. lora_alpha must be > 0, and a list of
// target_modules must match the modules of the weights both ways (PEFT's match: the path or its last parts).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/atomic_folder.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/io/lora_adapter.hpp"

namespace cpdiff::lora {

inline constexpr const char* peft_weights_file = "adapter_model.safetensors";
inline constexpr const char* peft_config_file = "adapter_config.json";
inline constexpr const char* peft_key_prefix = "base_model.model.";

// The adapter_config.json fields cpdiff uses.
struct peft_config {
  std::size_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> target_modules;
  bool target_modules_regex = false;    // given as one string: a regular expression in PEFT (not checked)
  std::string base_model_name_or_path;  // empty when null
};

inline std::string peft_key(const std::string& module, char ab) {
  return peft_key_prefix + module + (ab == 'A' ? ".lora_A.weight" : ".lora_B.weight");
}

// Writes <folder>/adapter_model.safetensors and <folder>/adapter_config.json, creating the folder. The weights
// are stored as `dtype` (F32, or F16 / BF16 rounded to nearest even, as PyTorch's .half() / .bfloat16()).
inline void save_peft(const std::filesystem::path& folder, const adapter& a, const std::string& base_model_name,
                      io::st_dtype dtype = io::st_dtype::F32) {
  constexpr const char* where = "lora::save_peft";
  CPDIFF_CHECK(a.rank > 0 && !a.modules.empty(), config_error, where, "adapter for '", folder.string(),
               "' is empty (rank ", a.rank, ", ", a.modules.size(), " modules)");
  io::safetensors_writer w;
  w.set_metadata("format", "pt");
  for (const auto& [module, lw] : a.modules) {
    CPDIFF_CHECK(lw.rank == a.rank && lw.a.size() == lw.a_shape().size() && lw.b.size() == lw.b_shape().size(),
                 shape_error, where, "module '", module, "': lora_A ", lw.a_shape(), " (", lw.a.size(),
                 " values) and lora_B ", lw.b_shape(), " (", lw.b.size(), " values) do not fit rank ", a.rank);
    w.add(peft_key(module, 'A'), std::vector<std::size_t>{lw.rank, lw.in_features}, lw.a, dtype);
    w.add(peft_key(module, 'B'), std::vector<std::size_t>{lw.out_features, lw.rank}, lw.b, dtype);
  }
  nlohmann::json c;
  c["peft_type"] = "LORA";
  c["task_type"] = nullptr;
  c["r"] = a.rank;
  if (a.alpha == std::floor(a.alpha) && std::abs(a.alpha) < 1e15)
    c["lora_alpha"] = static_cast<long long>(a.alpha);  // PEFT writes an int when it is one
  else
    c["lora_alpha"] = a.alpha;
  c["lora_dropout"] = a.dropout;
  c["target_modules"] = a.target_modules;
  c["bias"] = "none";
  c["fan_in_fan_out"] = false;
  c["use_rslora"] = a.use_rslora;
  c["init_lora_weights"] = true;
  c["inference_mode"] = true;
  c["modules_to_save"] = nullptr;
  if (base_model_name.empty())
    c["base_model_name_or_path"] = nullptr;
  else
    c["base_model_name_or_path"] = base_model_name;
  io::update_folder_atomic(
      folder,
      [&](const std::filesystem::path& tmp) {
        w.save(tmp / peft_weights_file);
        io::write_file_atomic(tmp / peft_config_file, c.dump(2) + "\n");
      },
      where);
}

namespace detail {
template <class... Args>
[[noreturn]] void peft_fail(const std::filesystem::path& file, Args&&... args) {
  throw_error<io_error>("lora::load_peft", "'", file.string(), "': ", std::forward<Args>(args)...);
}
}  // namespace detail

// Reads and checks <folder>/adapter_config.json.
inline peft_config read_peft_config(const std::filesystem::path& folder) {
  using detail::peft_fail;
  const auto file = folder / peft_config_file;
  CPDIFF_CHECK(std::filesystem::is_directory(folder), io_error, "lora::load_peft", "'", folder.string(),
               "' is not a folder (expected a PEFT adapter folder holding ", peft_config_file, " and ",
               peft_weights_file, ")");
  if (!std::filesystem::exists(file))
    peft_fail(file, "missing: a PEFT adapter folder holds ", peft_config_file, " and ", peft_weights_file);
  io::json_parse_result parsed = io::parse_json(io::read_file_text(file));
  if (!parsed.ok()) peft_fail(file, "not valid JSON: ", parsed.error);
  const nlohmann::json j = std::move(parsed.value);
  if (!j.is_object()) peft_fail(file, "not a JSON object");
  auto field = [&](const char* k) -> const nlohmann::json* {
    auto it = j.find(k);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  const nlohmann::json* pt = field("peft_type");
  if (pt == nullptr) peft_fail(file, "no 'peft_type' (expected \"LORA\")");
  if (!pt->is_string() || pt->get<std::string>() != "LORA")
    peft_fail(file, "'peft_type' is ", io::json_excerpt(*pt), "; only \"LORA\" adapters are supported");

  peft_config c;
  if (const auto* v = field("r")) {
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() == 0)
      peft_fail(file, "'r' is ", io::json_excerpt(*v), ", not a positive integer");
    c.r = v->get<std::size_t>();
  }
  if (const auto* v = field("lora_alpha")) {
    if (!v->is_number() || !(v->get<double>() > 0))
      peft_fail(file, "'lora_alpha' is ", io::json_excerpt(*v), ", not a number > 0");
    c.lora_alpha = v->get<double>();
  }
  if (const auto* v = field("lora_dropout")) {
    if (!v->is_number() || v->get<double>() < 0 || v->get<double>() >= 1)
      peft_fail(file, "'lora_dropout' is ", io::json_excerpt(*v), ", not a number in [0, 1)");
    c.lora_dropout = v->get<double>();
  }
  if (const auto* v = field("use_rslora")) {
    if (!v->is_boolean()) peft_fail(file, "'use_rslora' is ", io::json_excerpt(*v), ", not true or false");
    c.use_rslora = v->get<bool>();
  }
  if (const auto* v = field("target_modules")) {
    if (v->is_string()) {
      c.target_modules.push_back(v->get<std::string>());  // PEFT allows one regular expression
      c.target_modules_regex = true;
    } else {
      if (!v->is_array()) peft_fail(file, "'target_modules' is ", io::json_excerpt(*v), ", not a list of names");
      for (const auto& t : *v) {
        if (!t.is_string()) peft_fail(file, "'target_modules' holds ", io::json_excerpt(t), ", not a module name");
        c.target_modules.push_back(t.get<std::string>());
      }
    }
  }
  if (const auto* v = field("base_model_name_or_path")) {
    if (!v->is_string()) peft_fail(file, "'base_model_name_or_path' is ", io::json_excerpt(*v), ", not a string");
    c.base_model_name_or_path = v->get<std::string>();
  }
  // Settings that change what the weights mean: refuse rather than misread.
  if (const auto* v = field("fan_in_fan_out"); v && *v != false)
    peft_fail(file, "'fan_in_fan_out' is ", io::json_excerpt(*v),
              "; only false (weights stored as [out, in]) is supported");
  if (const auto* v = field("bias"); v && *v != "none")
    peft_fail(file, "'bias' is ", io::json_excerpt(*v), "; only \"none\" is supported (adapters without bias tensors)");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (const auto* v = field(k); v && !(v->is_object() && v->empty()))
      peft_fail(file, "'", k, "' is ", io::json_excerpt(*v), "; per-module ranks or alphas are not supported");
  if (const auto* v = field("use_dora"); v && *v != false)
    peft_fail(file, "'use_dora' is ", io::json_excerpt(*v), "; DoRA adapters are not supported");
  return c;
}

namespace detail {
// PEFT's match of a target name: the module path itself or its last components ("q_proj", "self_attn.q_proj").
inline bool peft_targets(const std::string& path, const std::string& target) {
  return path == target || (path.size() > target.size() && path.ends_with(target) &&
                            path[path.size() - target.size() - 1] == '.');
}
// A list of target_modules must name every module, and every name must match a module: the first module no
// name matches (`module` set) or else the first name no module matches (`target` set); nullopt when all match.
// Each module path is looked up by its dot-suffixes ("a.b.q", "b.q", "q") in a set of the names: linear in
// the number of modules and names (a scan of every pair took 20 s for 16,000 modules).
struct target_mismatch {
  std::string module, target;
};
template <class Modules>
std::optional<target_mismatch> find_target_mismatch(const Modules& modules, const std::vector<std::string>& targets) {
  std::unordered_map<std::string_view, bool> matched;  // target name -> some module matches it
  for (const std::string& t : targets) matched.emplace(t, false);
  for (const std::string& path : modules) {
    const std::string_view module = path;
    bool named = false;
    for (std::size_t from = 0; from != std::string_view::npos;) {
      if (auto it = matched.find(module.substr(from)); it != matched.end()) named = it->second = true;
      const std::size_t dot = module.find('.', from);
      from = dot == std::string_view::npos ? dot : dot + 1;
    }
    if (!named) return target_mismatch{path, {}};
  }
  for (const std::string& t : targets)
    if (!matched.at(t)) return target_mismatch{{}, t};
  return std::nullopt;
}
template <class Pairs>
void check_target_modules(const std::filesystem::path& file, const Pairs& pairs, const peft_config& c) {
  if (c.target_modules_regex || c.target_modules.empty()) return;
  std::vector<std::string> modules;
  for (const auto& entry : pairs) modules.push_back(entry.first);
  const auto miss = find_target_mismatch(modules, c.target_modules);
  if (!miss) return;
  const auto config = file.parent_path() / peft_config_file;
  if (!miss->module.empty())
    peft_fail(config, "target_modules does not name module '", miss->module, "' of ", file.string());
  peft_fail(config, "target_modules names '", miss->target, "', which no module of ", file.string(), " matches");
}
}  // namespace detail

// The A/B tensor pair of each module of a PEFT weights file, checked against its config: only
// base_model.model.<module>.lora_{A,B}.weight keys, floating-point, 2-D, both halves present, shapes [r, in]
// and [out, r]. Pointers into `st`.
struct peft_module_tensors {
  const io::tensor_entry* a = nullptr;
  const io::tensor_entry* b = nullptr;
};
inline std::map<std::string, peft_module_tensors> peft_modules(const std::filesystem::path& file,
                                                                const io::safetensors_file& st, const peft_config& c) {
  using detail::peft_fail;
  if (st.size() == 0) peft_fail(file, "holds no tensors");
  std::map<std::string, peft_module_tensors> pairs;
  const std::string prefix = peft_key_prefix, suffix_a = ".lora_A.weight", suffix_b = ".lora_B.weight";
  auto ends_with = [](const std::string& s, const std::string& x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  for (const io::tensor_entry& e : st.tensors()) {
    const bool is_a = ends_with(e.name, suffix_a), is_b = ends_with(e.name, suffix_b);
    if (e.name.rfind(prefix, 0) != 0 || !(is_a || is_b) || e.name.size() <= prefix.size() + suffix_a.size())
      peft_fail(file, "unexpected tensor '", e.name, "': expected only ", prefix, "<module>", suffix_a, " / ",
                suffix_b, " pairs");
    if (!io::st_dtype_is_float(e.dtype))
      peft_fail(file, "tensor '", e.name, "' has dtype ", io::st_dtype_name(e.dtype), ", not a floating-point dtype");
    CPDIFF_CHECK(e.shape.size() == 2, shape_error, "lora::load_peft", "'", file.string(), "': tensor '", e.name,
                 "' has ", e.shape.size(), " dimensions, expected 2 (", is_a ? "[r, in_features]" : "[out_features, r]",
                 ")");
    const std::string module = e.name.substr(prefix.size(), e.name.size() - prefix.size() - suffix_a.size());
    (is_a ? pairs[module].a : pairs[module].b) = &e;
  }
  for (const auto& [module, p] : pairs) {
    if (p.a == nullptr) peft_fail(file, "module '", module, "' has no lora_A (missing key '", peft_key(module, 'A'), "')");
    if (p.b == nullptr) peft_fail(file, "module '", module, "' has no lora_B (missing key '", peft_key(module, 'B'), "')");
    const auto& sa = p.a->shape;
    const auto& sb = p.b->shape;
    CPDIFF_CHECK(sa[0] == c.r && sa[1] > 0, shape_error, "lora::load_peft", "'", file.string(), "': tensor '",
                 p.a->name, "' has shape ", shape::from_range(sa.begin(), sa.end()), ", expected [", c.r,
                 ", in_features] with r = ", c.r, " from ", peft_config_file);
    CPDIFF_CHECK(sb[1] == c.r && sb[0] > 0, shape_error, "lora::load_peft", "'", file.string(), "': tensor '",
                 p.b->name, "' has shape ", shape::from_range(sb.begin(), sb.end()), ", expected [out_features, ",
                 c.r, "] with r = ", c.r, " from ", peft_config_file);
  }
  detail::check_target_modules(file, pairs, c);
  return pairs;
}

// Reads a PEFT LoRA folder into an adapter (values as F32; F16 / BF16 / F64 files are converted).
// What load_peft accepts beyond a well-formed folder.
struct peft_load_options {
  // NaN or infinite weights: refused by default (a diverged run's adapter would poison a collection's
  // statistics and every model trained on it); true loads them as they are.
  bool allow_non_finite = false;
};

namespace detail {
inline void check_finite(const std::filesystem::path& file, const std::string& tensor, const std::vector<float>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      peft_fail(file, "tensor '", tensor, "' holds ", v[i], " at element ", i,
                " (a diverged run?); lora::peft_load_options{.allow_non_finite = true} loads it anyway");
}
}  // namespace detail

inline adapter load_peft(const std::filesystem::path& folder, const peft_load_options& options = {}) {
  const peft_config c = read_peft_config(folder);
  const auto file = folder / peft_weights_file;
  const io::safetensors_file st = io::load_safetensors(file);
  adapter a;
  a.rank = c.r;
  a.alpha = c.lora_alpha;
  a.use_rslora = c.use_rslora;
  a.dropout = c.lora_dropout;
  a.target_modules = c.target_modules;
  for (const auto& [module, p] : peft_modules(file, st, c)) {
    std::vector<float> wa = st.to_f32(p.a->name), wb = st.to_f32(p.b->name);
    if (!options.allow_non_finite) {
      detail::check_finite(file, p.a->name, wa);
      detail::check_finite(file, p.b->name, wb);
    }
    a.add(module, lora_weights{c.r, p.a->shape[1], p.b->shape[0], std::move(wa), std::move(wb)});
  }
  return a;
}

}  // namespace cpdiff::lora
