#pragma once
// The layer contract (DESIGN.md "Layers"), written once as a concept and checked at the foot of every
// layer header (static_assert(layer<...>)).
//
// A layer L<..., T, B> with parameters is constructed with a parameter_store<T, B>&, a name prefix and an
// rng, and registers its parameters in the store under "<prefix>.<param>"; a parameter-free layer is
// constructed from the store alone (it keeps the store's backend value, so its kernels run on the model's
// stream). Both take their backend from the store, never from a default-built value.
//   forward(x)   -> const view of an output buffer the layer owns. It caches what backward needs
//                   (a view of x included: x must stay alive and unchanged until backward).
//   backward(dy) -> const view of dx (a buffer the layer owns). It ADDS the parameter gradients into
//                   the store's gradient buffer (zero it once per step: store.grads() / zero_grad)
//                   and computes no gradient for frozen parameters. Called before forward, it throws
//                   shape_error "... called before forward".
//   for_each_parameter(f) visits (entry, value view, grad view) of the layer's own parameters.
// Kernels are called unqualified (gemm(be_, ...)) so that argument-dependent lookup on the backend
// finds them at instantiation; never name an op like a layer (a class named `add` hides an op `add`).
// Buffers are resized, never reallocated once warm: no allocation inside a training step.
//
// Static sizes: a layer may say what it takes and gives along its feature / channel axis,
//   static constexpr std::size_t in_size, out_size   (cpdiff::dynamic when run-time)
// and nn::sequential checks adjacent members at compile time with them (layer_sizes below).
#include <concepts>
#include <cstddef>
#include <string_view>
#include <utility>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::nn {

template <class L>
concept layer = requires(L& l, tensor_view<const typename L::value_type, memory_space_t<typename L::backend_type>> x) {
  typename L::value_type;
  typename L::backend_type;
  { l.forward(x) } -> std::convertible_to<decltype(x)>;
  { l.backward(x) } -> std::convertible_to<decltype(x)>;
};

// What a layer takes and gives along its size axis: dynamic when it does not say (element-wise layers
// pass the size through; see sequential's check).
template <class L>
struct layer_sizes {
  static constexpr std::size_t in = dynamic, out = dynamic;
  static constexpr bool passes_through = true;  // out = in (activations, dropout, norms over that axis)
};
template <class L>
  requires requires {
    { L::in_size } -> std::convertible_to<std::size_t>;
    { L::out_size } -> std::convertible_to<std::size_t>;
  }
struct layer_sizes<L> {
  static constexpr std::size_t in = L::in_size, out = L::out_size;
  static constexpr bool passes_through = false;
};

// in_member(name, f): f() run as the model's member `name` (its parameter prefix, "enc1", "out"): a
// cpdiff::error raised inside says where, "cpdiff: out: nn::linear::forward: ...", unless a member nested
// deeper (a sequential's index) has named itself already. `name` may be a function that builds the name,
// called only when something throws (nothing else costs anything either).
template <class Name, class F>
decltype(auto) in_member(const Name& name, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (error& e) {
    if constexpr (std::invocable<const Name&>)
      e.at_member(name());
    else
      e.at_member(std::string_view(name));
    throw;
  }
}

}  // namespace cpdiff::nn

namespace cpdiff {
using nn::layer;  // cpdiff::layer, as before 0.2
}  // namespace cpdiff
