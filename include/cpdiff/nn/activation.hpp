#pragma once
// activation<Functor, T, B>: an element-wise, parameter-free layer y = f(x) over any shape.
// The maths lives in the functor (nn/activation_functors.hpp) so the CUDA backend reuses it;
// this layer only sizes buffers, checks shapes and calls ops::transform.
//   x [...]   y [...] (same shape)   dy [...]   dx [...]
// The aliases below are the activations a model names:
//   relu, leaky_relu<Slope = std::ratio<1, 100>>, elu<Alpha = std::ratio<1>>, silu,
//   gelu (exact, erf), gelu_tanh (tanh approximation), tanh_layer, sigmoid, hardtanh (clamp to [-1, 1])
// (tanh_layer, because a class nn::tanh would hide std::tanh / ::tanh from unqualified calls in nn).
#include <ratio>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/nn/activation_functors.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <class Functor, class T = float, class B = cpu>
class activation {
 public:
  using value_type = T;
  using backend_type = B;
  using functor_type = Functor;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  // The backend comes from the model's parameter store (or is given); a functor with run-time members
  // (e.g. a slope chosen at run time) is passed after it.
  explicit activation(const parameter_store<T, B>& ps, Functor f = {}) : be_(ps.backend()), f_(f) {}
  explicit activation(const B& be, Functor f = {}) : be_(be), f_(f) {}
  activation()
    requires stateless_backend<B>
  = default;
  explicit activation(Functor f)
    requires stateless_backend<B>
      : f_(f) {}

  const Functor& functor() const { return f_; }

  // Caches a view of x (x must stay alive until backward) and owns y.
  cview forward(cview x) {
    expect_nonempty(x, forward_name(), "input");
    x_ = x;
    y_.resize(x.shape());
    // y = f(x)
    transform(be_, x, y_.view(), apply_value<Functor>{f_});
    return y_.cview();
  }

  cview backward(cview dy) {
    CPDIFF_CHECK(x_.data() != nullptr, shape_error, backward_name(), "called before forward (dy ", dy.shape(), ")");
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, backward_name(), "dy: expected shape ", y_.shape(),
                 " (the last forward output), got ", dy.shape());
    dx_.resize(x_.shape());
    // dx = dy * f'(x), f' evaluated from x and the cached y
    transform(be_, x_, y_.cview(), dy, dx_.view(), apply_derivative<Functor>{f_});
    return dx_.cview();
  }

  // No parameters: nothing to visit.
  template <class F>
  void for_each_parameter(F&&) {}

 private:
  // "nn::<functor name>::forward" / "::backward", built once per instantiation.
  static const char* forward_name() {
    static const std::string s = std::string("nn::") + Functor::name + "::forward";
    return s.c_str();
  }
  static const char* backward_name() {
    static const std::string s = std::string("nn::") + Functor::name + "::backward";
    return s.c_str();
  }

  B be_{};
  Functor f_{};
  cview x_;
  tensor<T, B> y_, dx_;
};

template <class T = float, class B = cpu>
using relu = activation<relu_fn, T, B>;
template <class Slope = std::ratio<1, 100>, class T = float, class B = cpu>
using leaky_relu = activation<leaky_relu_fn<Slope>, T, B>;
template <class Alpha = std::ratio<1>, class T = float, class B = cpu>
using elu = activation<elu_fn<Alpha>, T, B>;
template <class T = float, class B = cpu>
using silu = activation<silu_fn, T, B>;
template <class T = float, class B = cpu>
using gelu = activation<gelu_erf_fn, T, B>;
template <class T = float, class B = cpu>
using gelu_tanh = activation<gelu_tanh_fn, T, B>;
template <class T = float, class B = cpu>
using tanh_layer = activation<tanh_fn, T, B>;
template <class T = float, class B = cpu>
using sigmoid = activation<sigmoid_fn, T, B>;
template <class T = float, class B = cpu>
using hardtanh = activation<hardtanh_fn, T, B>;

static_assert(layer<relu<>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
