#pragma once
// The layer contract (DESIGN.md "Layers"), written once as a concept.
//
// A layer L<..., T, B> is constructed with a parameter_store<T, B>&, a name prefix and (when it has
// parameters) an rng, and registers its parameters in the store under "<prefix>.<param>".
//   forward(x)   -> const view of an output buffer the layer owns. It caches what backward needs
//                   (a view of x included: x must stay alive and unchanged until backward).
//   backward(dy) -> const view of dx (a buffer the layer owns). It ADDS the parameter gradients into
//                   the store's gradient buffer (zero it once per step: store.grads() / zero_grad)
//                   and computes no gradient for frozen parameters.
//   for_each_parameter(f) visits (entry, value view, grad view) of the layer's own parameters.
// Kernels are called unqualified (gemm(be_, ...)) so that argument-dependent lookup on the backend
// finds them at instantiation; never name an op like a layer (a class named `add` hides an op `add`).
// Buffers are resized, never reallocated once warm: no allocation inside a training step.
#include <concepts>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/tensor/tensor_view.hpp"

namespace cpdiff {

template <class L>
concept layer = requires(L& l, tensor_view<const typename L::value_type, memory_space_t<typename L::backend_type>> x) {
  typename L::value_type;
  typename L::backend_type;
  { l.forward(x) } -> std::convertible_to<decltype(x)>;
  { l.backward(x) } -> std::convertible_to<decltype(x)>;
};

}  // namespace cpdiff
