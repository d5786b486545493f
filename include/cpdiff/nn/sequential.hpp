#pragma once
// sequential<Layers...>: layers applied in order (PyTorch's nn.Sequential), backward in reverse.
// Each member is named "<name>.<index>" as PyTorch names them, so state dicts line up.
// A member with parameters is built from (store, name, rng); a parameter-free one from nothing
// (or from the backend value). The whole chain satisfies the layer contract itself.
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::nn {

namespace detail {
template <class L, class T, class B>
L make_member(parameter_store<T, B>& ps, const std::string& name, rng& g) {
  if constexpr (std::is_constructible_v<L, parameter_store<T, B>&, const std::string&, rng&>)
    return L(ps, name, g);
  else if constexpr (std::is_constructible_v<L, B>)
    return L(ps.backend());
  else
    return L();
}
}  // namespace detail

template <class... Layers>
class sequential {
  static_assert(sizeof...(Layers) > 0, "cpdiff::nn::sequential: give at least one layer");
  using first = std::tuple_element_t<0, std::tuple<Layers...>>;

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
      : layers_{detail::make_member<Layers>(ps, name + "." + std::to_string(I), g)...} {}

  template <std::size_t I>
  cview forward_from(cview x) {
    cview y = std::get<I>(layers_).forward(x);
    if constexpr (I + 1 < sizeof...(Layers))
      return forward_from<I + 1>(y);
    else
      return y;
  }
  template <std::size_t I>
  cview backward_from(cview dy) {
    cview dx = std::get<I>(layers_).backward(dy);
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
};

}  // namespace cpdiff::nn
