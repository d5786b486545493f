#pragma once
// sequential<Layers...>: layers applied in order (PyTorch's nn.Sequential), backward in reverse.
// Each member is named "<name>.<index>" as PyTorch names them, so state dicts line up.
// A member with parameters is built from (store, name, rng); a parameter-free one from the store alone
// (it takes the store's backend value, so every member's kernels run on the model's stream).
// The whole chain satisfies the layer contract itself. An error raised in a member names it ("encoder.3").
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cpdiff/core/rng.hpp"
#include "cpdiff/nn/layer.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::nn {

namespace detail {
template <class L, class T, class B>
L make_member(parameter_store<T, B>& ps, const std::string& name, rng& g) {
  if constexpr (std::is_constructible_v<L, parameter_store<T, B>&, const std::string&, rng&>)
    return L(ps, name, g);
  else {
    static_assert(std::is_constructible_v<L, const parameter_store<T, B>&>,
                  "cpdiff::nn::sequential: a member must be constructible from (parameter_store&, name, rng&) "
                  "or, without parameters, from (const parameter_store&)");
    return L(ps);
  }
}

// The first adjacent pair whose static sizes disagree: {index of the last sized layer before it, its index},
// or {0, 0} when all agree. Layers that say nothing (element-wise ones) pass the size through.
template <class... Layers>
constexpr std::pair<std::size_t, std::size_t> size_mismatch() {
  constexpr std::size_t in[] = {layer_sizes<Layers>::in...};
  constexpr std::size_t out[] = {layer_sizes<Layers>::out...};
  constexpr bool through[] = {layer_sizes<Layers>::passes_through...};
  std::size_t cur = dynamic, from = 0;
  for (std::size_t i = 0; i < sizeof...(Layers); ++i) {
    if (through[i]) continue;
    if (cur != dynamic && in[i] != dynamic && cur != in[i]) return {from, i};
    cur = out[i];
    from = i;
  }
  return {0, 0};
}
// True when A's output size fits B's input size (or either is run-time): shown with both types in the error.
// Checked = false (no mismatch found) is always true.
template <class A, class B, bool Checked = true>
inline constexpr bool sizes_fit = !Checked || layer_sizes<A>::out == dynamic || layer_sizes<B>::in == dynamic ||
                                  layer_sizes<A>::out == layer_sizes<B>::in;
}  // namespace detail

template <class... Layers>
class sequential {
  static_assert(sizeof...(Layers) > 0, "cpdiff::nn::sequential: give at least one layer");
  using first = std::tuple_element_t<0, std::tuple<Layers...>>;
  static_assert((layer<Layers> && ...),
                "cpdiff::nn::sequential: every member must satisfy cpdiff::nn::layer (forward(x) and backward(dy) over "
                "views of its value type and backend); the members for which layer<...> is false are named above");
  static_assert((std::is_same_v<typename Layers::value_type, typename first::value_type> && ...),
                "cpdiff::nn::sequential: all members must have the same value type T (float or double)");
  static_assert((std::is_same_v<typename Layers::backend_type, typename first::backend_type> && ...),
                "cpdiff::nn::sequential: all members must have the same backend B (cpu or gpu)");
  static constexpr auto mismatch_ = detail::size_mismatch<Layers...>();
  static_assert(detail::sizes_fit<std::tuple_element_t<mismatch_.first, std::tuple<Layers...>>,
                                  std::tuple_element_t<mismatch_.second, std::tuple<Layers...>>,
                                  (mismatch_.second > 0)>,
                "cpdiff::nn::sequential: adjacent members' sizes do not match: the first layer in sizes_fit<A, B> "
                "gives out_size features/channels, the second takes a different in_size");

 public:
  using value_type = typename first::value_type;
  using backend_type = typename first::backend_type;
  using cview = tensor_view<const value_type, memory_space_t<backend_type>>;
  static constexpr std::size_t size = sizeof...(Layers);

  sequential(parameter_store<value_type, backend_type>& ps, const std::string& name, rng& g)
      : sequential(ps, name, g, std::index_sequence_for<Layers...>{}) {}

  template <std::size_t I>
  auto& get() { return std::get<I>(layers_); }

  cview forward(cview x) { return forward_from<0>(x); }
  cview backward(cview dy) { return backward_from<sizeof...(Layers) - 1>(dy); }

  // Train/eval mode reaches every member that has one (dropout, batch norm).
  void set_training(bool on) {
    std::apply([on](auto&... l) { (set_mode(l, on), ...); }, layers_);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    std::apply([&f](auto&... l) { (l.for_each_parameter(f), ...); }, layers_);
  }

 private:
  // Braced initialisation evaluates left to right: parameters are registered (and their random
  // streams taken) in layer order, so a model's initial weights depend only on the seed.
  template <std::size_t... I>
  sequential(parameter_store<value_type, backend_type>& ps, const std::string& name, rng& g, std::index_sequence<I...>)
      : layers_{detail::make_member<Layers>(ps, name + "." + std::to_string(I), g)...}, name_(name) {}

  // Member I's name ("encoder.3"), built only when an error passes through it.
  template <std::size_t I, class F>
  cview as_member(F&& f) {
    return in_member([this] { return name_ + "." + std::to_string(I); }, std::forward<F>(f));
  }
  template <std::size_t I>
  cview forward_from(cview x) {
    cview y = as_member<I>([&] { return std::get<I>(layers_).forward(x); });
    if constexpr (I + 1 < sizeof...(Layers))
      return forward_from<I + 1>(y);
    else
      return y;
  }
  template <std::size_t I>
  cview backward_from(cview dy) {
    cview dx = as_member<I>([&] { return std::get<I>(layers_).backward(dy); });
    if constexpr (I > 0)
      return backward_from<I - 1>(dx);
    else
      return dx;
  }
  template <class L>
  static void set_mode(L& l, bool on) {
    if constexpr (requires { l.set_training(on); }) l.set_training(on);
  }

  std::tuple<Layers...> layers_;
  std::string name_;
};

// A chain's own sizes, so a sequential nested in another is checked too: the first sized member's input
// and the last sized member's output.
template <class... Layers>
struct layer_sizes<sequential<Layers...>> {
 private:
  static constexpr std::size_t pick(bool last, std::size_t dflt) {
    constexpr std::size_t in[] = {layer_sizes<Layers>::in...};
    constexpr std::size_t out[] = {layer_sizes<Layers>::out...};
    constexpr bool through[] = {layer_sizes<Layers>::passes_through...};
    std::size_t v = dflt;
    for (std::size_t k = 0; k < sizeof...(Layers); ++k) {
      const std::size_t i = last ? sizeof...(Layers) - 1 - k : k;
      if (!through[i]) return last ? out[i] : in[i];
    }
    return v;
  }

 public:
  static constexpr bool passes_through = (layer_sizes<Layers>::passes_through && ...);
  static constexpr std::size_t in = pick(false, dynamic), out = pick(true, dynamic);
};


}  // namespace cpdiff::nn
