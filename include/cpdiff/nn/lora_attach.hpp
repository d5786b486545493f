#pragma once
// LoRA on a model's existing projections, as PEFT injects it: every Linear whose module path matches one of
// `target_modules` (the path itself or its last dotted components, PEFT's rule: "query" selects
// "vit.encoder.layer.0.attention.attention.query") gets lora_A / lora_B (nn::linear::attach_lora) and its weight
// and bias are frozen. A model takes part through for_each_linear(f) (models::vit has it).
//   rng g{seed, 0};
//   lora::attach(vit, {"query", "value"}, /*rank*/ 4, /*alpha*/ 16, g);   // returns the number of projections
//   lora::adapter a = lora::attached_adapter(vit);                           // values, PEFT's module keys
//   lora::save_peft("out/task0", a, "vit-fashion");                          // io/peft.hpp
//   lora::load_attached(vit, lora::load_peft("out/task0"));
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/io/lora_adapter.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::lora {

template <class Model>
std::size_t attach(Model& m, const std::vector<std::string>& target_modules, std::size_t rank, double alpha, rng& g,
                   bool rslora = false) {
  constexpr const char* where = "lora::attach";
  CPDIFF_CHECK(!target_modules.empty(), config_error, where, "no target_modules given (e.g. {\"query\", \"value\"})");
  std::vector<bool> used(target_modules.size(), false);
  std::size_t count = 0;
  m.for_each_linear([&](auto& lin) {
    const std::string path = lin.module_name();
    bool hit = false;
    for (std::size_t t = 0; t < target_modules.size(); ++t)
      if (detail::peft_targets(path, target_modules[t])) used[t] = hit = true;
    if (!hit) return;
    lin.attach_lora(rank, alpha, g, rslora);
    ++count;
  });
  for (std::size_t t = 0; t < target_modules.size(); ++t)
    CPDIFF_CHECK(used[t], config_error, where, "target module '", target_modules[t],
                 "' matches no Linear of the model (PEFT's rule: a module path or its last dotted components)");
  return count;
}

namespace detail {
template <class T, class B>
std::vector<T> host_values(const parameter_store<T, B>& ps, param_id id) {
  return to_host(ps.backend(), ps.value(id));
}
}  // namespace detail

// The model's attached LoRAs as an adapter: module path -> (A, B), with rank, alpha and targets.
template <class Model>
adapter attached_adapter(Model& m) {
  adapter a;
  m.for_each_linear([&](auto& lin) {
    if (lin.lora_rank() == 0) return;
    const auto ha = detail::host_values(m.parameters(), lin.lora_a_id());
    const auto hb = detail::host_values(m.parameters(), lin.lora_b_id());
    if (a.rank == 0) {
      a.rank = lin.lora_rank();
      a.alpha = lin.lora_alpha();
      a.use_rslora = lin.lora_rslora();
    }
    a.add(lin.module_name(), lora_weights{lin.lora_rank(), lin.in(), lin.out(), {ha.begin(), ha.end()}, {hb.begin(), hb.end()}});
    a.add_target(lin.module_name());
  });
  CPDIFF_CHECK(a.rank > 0, config_error, "lora::attached_adapter", "the model has no LoRA (call lora::attach first)");
  return a;
}

// Copies an adapter's A and B into the model's attached LoRAs: the same modules, shapes, rank and scaling.
template <class Model>
void load_attached(Model& m, const adapter& a) {
  constexpr const char* where = "lora::load_attached";
  std::size_t seen = 0;
  m.for_each_linear([&](auto& lin) {
    if (lin.lora_rank() == 0) return;
    const lora_weights& w = a.at(lin.module_name());
    CPDIFF_CHECK(w.rank == lin.lora_rank() && w.in_features == lin.in() && w.out_features == lin.out(), shape_error,
                 where, "module '", lin.module_name(), "': the adapter has lora_A ", w.a_shape(), ", lora_B ",
                 w.b_shape(), "; the model's LoRA is rank ", lin.lora_rank(), " on [", lin.out(), ", ", lin.in(), "]");
    CPDIFF_CHECK(detail::same_scalar(a.scaling(), lin.lora_scaling()), config_error, where, "module '",
                 lin.module_name(), "': the adapter's scaling ", a.scaling(), " differs from the model's ",
                 lin.lora_scaling());
    auto& ps = m.parameters();
    using T = typename Model::value_type;
    const std::vector<T> va(w.a.begin(), w.a.end()), vb(w.b.begin(), w.b.end());
    from_host(ps.backend(), std::span<const T>(va), ps.value(lin.lora_a_id()));
    from_host(ps.backend(), std::span<const T>(vb), ps.value(lin.lora_b_id()));
    ++seen;
  });
  CPDIFF_CHECK(seen == a.size(), config_error, where, "the adapter has ", a.size(), " modules, the model's LoRAs ",
               seen);
}

}  // namespace cpdiff::lora
