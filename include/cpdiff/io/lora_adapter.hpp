#pragma once
// lora::adapter: a whole LoRA adapter described at run time (what PEFT saves): rank, alpha, rsLoRA flag,
// dropout, target module names, and per module path the pair A [rank, in], B [out, rank] as host floats.
// A plain value: it is what io/peft.hpp reads and writes, what the Cond P-Diff data pipeline flattens into
// one vector (data/), and what nn/lora_transfer.hpp copies out of and into nn::lora_linear layers.
//
//   lora::adapter a;
//   lora::extract(a, q, v);                 // nn/lora_transfer.hpp; keys: each layer's name(), the module path
//   lora::save_peft("out/task0", a, "roberta-base");                       // io/peft.hpp
//   lora::load_into(q2, lora::load_peft("out/task0"), "encoder.layer.0.attention.self.query");
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"

namespace cpdiff::lora {

namespace detail {
// Two alphas or scalings equal up to rounding (a value read back from JSON may differ in the last bit).
inline bool same_scalar(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b)); }
}  // namespace detail

// One adapted module: A [rank, in_features], B [out_features, rank], row-major.
struct lora_weights {
  std::size_t rank = 0, in_features = 0, out_features = 0;
  std::vector<float> a;  // [rank, in_features]
  std::vector<float> b;  // [out_features, rank]

  shape a_shape() const { return {rank, in_features}; }
  shape b_shape() const { return {out_features, rank}; }
  friend bool operator==(const lora_weights&, const lora_weights&) = default;
};

struct adapter {
  std::size_t rank = 0;   // r, shared by every module
  double alpha = 0;       // lora_alpha
  bool use_rslora = false;
  double dropout = 0;     // lora_dropout (recorded for the config; weights do not depend on it)
  std::vector<std::string> target_modules;     // PEFT's target_modules: module names, e.g. "query", "value"
  std::map<std::string, lora_weights> modules;  // module path -> weights, sorted by path

  // s = alpha / r, or alpha / sqrt(r) with rsLoRA.
  double scaling() const { return use_rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank); }
  std::size_t size() const { return modules.size(); }
  bool contains(const std::string& module) const { return modules.count(module) != 0; }
  // Number of LoRA parameters over all modules.
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for (const auto& [k, w] : modules) n += w.a.size() + w.b.size();
    return n;
  }

  const lora_weights& at(const std::string& module) const {
    auto it = modules.find(module);
    if (it != modules.end()) return it->second;
    std::string have;
    for (const auto& [k, w] : modules) have += (have.empty() ? "'" : ", '") + k + "'";
    throw_error<config_error>("lora::adapter::at", "no module '", module, "'; the adapter has ", modules.size(),
                              " module(s): ", have.empty() ? std::string("(none)") : have);
  }

  // Adds (or replaces) a module after checking its rank and that the vectors fill the stated shapes.
  void add(const std::string& module, lora_weights w) {
    CPDIFF_CHECK(rank > 0, config_error, "lora::adapter::add", "module '", module,
                 "': set the adapter's rank before adding modules");
    CPDIFF_CHECK(w.rank == rank, shape_error, "lora::adapter::add", "module '", module, "': rank ", w.rank,
                 " differs from the adapter's rank ", rank);
    CPDIFF_CHECK(w.in_features > 0 && w.out_features > 0, shape_error, "lora::adapter::add", "module '", module,
                 "': empty shapes A ", w.a_shape(), ", B ", w.b_shape());
    std::size_t na = 0, nb = 0;
    CPDIFF_CHECK(w.a_shape().checked_size(na) && w.b_shape().checked_size(nb), shape_error, "lora::adapter::add",
                 "module '", module, "': shapes A ", w.a_shape(), ", B ", w.b_shape(), " overflow");
    CPDIFF_CHECK(w.a.size() == na, shape_error, "lora::adapter::add", "module '", module, "': lora_A holds ",
                 w.a.size(), " values but its shape ", w.a_shape(), " needs ", na);
    CPDIFF_CHECK(w.b.size() == nb, shape_error, "lora::adapter::add", "module '", module, "': lora_B holds ",
                 w.b.size(), " values but its shape ", w.b_shape(), " needs ", nb);
    modules[module] = std::move(w);
  }
  // Adds the module name (the last component of a module path) to target_modules if it is new.
  void add_target(const std::string& module_path) {
    const auto dot = module_path.rfind('.');
    std::string leaf = dot == std::string::npos ? module_path : module_path.substr(dot + 1);
    if (std::find(target_modules.begin(), target_modules.end(), leaf) == target_modules.end())
      target_modules.insert(std::upper_bound(target_modules.begin(), target_modules.end(), leaf), std::move(leaf));
  }

  friend bool operator==(const adapter&, const adapter&) = default;
};

}  // namespace cpdiff::lora
