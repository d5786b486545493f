#pragma once
// Moving a LoRA between layers and a lora::adapter (io/lora_adapter.hpp): extract() copies each
// nn::lora_linear's A and B out under its module path, load_into() / load_all() copy them back in, checking
// shapes, rank, scaling and that the layer is not merged. Works for layers on any backend (host copies).
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/io/lora_adapter.hpp"

namespace cpdiff::lora {

namespace detail {
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
