#pragma once
// lora::adapter: a whole LoRA adapter described at run time (what PEFT saves): rank, alpha, rsLoRA flag,
// dropout, target module names, and per module path the pair A [rank, in], B [out, rank] as host floats.
// It is the bridge between compile-time layers (nn::lora_linear) and files (lora/peft.hpp), and the unit
// that the Cond P-Diff data pipeline flattens into one vector.
//
//   lora::adapter a;
//   lora::extract(a, q, v);                 // keys: each layer's name(), the module path
//   lora::save_peft("out/task0", a, "roberta-base");
//   lora::load_into(q2, lora::load_peft("out/task0"), "encoder.layer.0.attention.self.query");
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"

namespace cpdiff::lora {

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
    CPDIFF_CHECK(w.a.size() == w.a_shape().size(), shape_error, "lora::adapter::add", "module '", module,
                 "': lora_A holds ", w.a.size(), " values but its shape ", w.a_shape(), " needs ", w.a_shape().size());
    CPDIFF_CHECK(w.b.size() == w.b_shape().size(), shape_error, "lora::adapter::add", "module '", module,
                 "': lora_B holds ", w.b.size(), " values but its shape ", w.b_shape(), " needs ", w.b_shape().size());
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

namespace detail {
inline bool same_scalar(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b)); }

// Host float copy of a layer's parameter view (any backend).
template <class V, class Be>
std::vector<float> to_float(const Be& be, V v) {
  using T = typename V::value_type;
  const std::vector<T> host = to_host(be, tensor_view<const T, typename V::memory_space>(v));
  return std::vector<float>(host.begin(), host.end());
}
}  // namespace detail

// Copies a layer's A and B into `a` under `module`. An empty adapter (rank 0) takes the layer's rank,
// alpha, rsLoRA flag and dropout; a non-empty one must agree with them (config_error otherwise).
template <class L>
void extract_as(adapter& a, const std::string& module, const L& layer) {
  if (a.rank == 0) {
    a.rank = L::rank;
    a.alpha = L::alpha;
    a.use_rslora = L::use_rslora;
    a.dropout = static_cast<double>(layer.dropout());
  }
  CPDIFF_CHECK(a.rank == L::rank && detail::same_scalar(a.alpha, L::alpha) && a.use_rslora == L::use_rslora,
               config_error, "lora::extract", "module '", module, "': layer has r = ", L::rank, ", alpha = ", L::alpha,
               ", rslora = ", L::use_rslora, " but the adapter has r = ", a.rank, ", alpha = ", a.alpha,
               ", rslora = ", a.use_rslora, " (one adapter holds one rank and alpha)");
  const auto& be = layer.backend();
  a.add(module, lora_weights{L::rank, L::in_features, L::out_features, detail::to_float(be, layer.lora_A()),
                             detail::to_float(be, layer.lora_B())});
  a.add_target(module);
}

// extract(a, layers...): each layer under its own name() (the module path it was constructed with).
template <class... L>
void extract(adapter& a, const L&... layers) {
  (extract_as(a, layers.name(), layers), ...);
}

// Copies the module's A and B into the layer. Checks: the module exists (config_error), its shapes equal
// the layer's A [Rank, In] and B [Out, Rank] (shape_error naming the module, expected and got shapes),
// the adapter's scaling equals the layer's (config_error: a different alpha would change the function),
// and the layer is not merged (config_error: unmerge() first).
template <class L>
void load_into(L& layer, const adapter& a, const std::string& module) {
  constexpr const char* where = "lora::load_into";
  const lora_weights& w = a.at(module);
  const shape want_a{L::rank, L::in_features}, want_b{L::out_features, L::rank};
  CPDIFF_CHECK(w.a_shape() == want_a && w.b_shape() == want_b, shape_error, where, "module '", module,
               "': layer '", layer.name(), "' expects lora_A ", want_a, " and lora_B ", want_b, ", the adapter holds lora_A ",
               w.a_shape(), " and lora_B ", w.b_shape(), (w.rank != L::rank ? " (rank differs)" : ""));
  CPDIFF_CHECK(a.use_rslora == L::use_rslora && detail::same_scalar(a.scaling(), L::scaling_value()), config_error,
               where, "module '", module, "': the adapter's scaling (alpha = ", a.alpha, ", r = ", a.rank,
               ", rslora = ", a.use_rslora, ") differs from the layer's (alpha = ", L::alpha, ", r = ", L::rank,
               ", rslora = ", L::use_rslora, ")");
  CPDIFF_CHECK(!layer.merged(), config_error, where, "layer '", layer.name(), "' is merged; call unmerge() first");
  using T = typename L::value_type;
  const auto& be = layer.backend();
  const std::vector<T> ta(w.a.begin(), w.a.end()), tb(w.b.begin(), w.b.end());
  from_host(be, std::span<const T>(ta), layer.lora_A());
  from_host(be, std::span<const T>(tb), layer.lora_B());
}

template <class L>
void load_into(L& layer, const adapter& a) {
  load_into(layer, a, layer.name());
}

// load_all(a, layers...): each layer from the module of its own name().
template <class... L>
void load_all(const adapter& a, L&... layers) {
  (load_into(layers, a, layers.name()), ...);
}

}  // namespace cpdiff::lora
