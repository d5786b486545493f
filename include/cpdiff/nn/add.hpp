#pragma once
// add: y = a + b for two inputs of the same shape (a residual connection).
//   a [...]   b [...]   y [...]
//
// A two-input op, so it does not fit the one-input `layer` concept (core/concepts.hpp):
//   forward(a, b) -> y        (a view of a buffer the layer owns)
//   backward(dy)  -> {da, db}, a std::pair of views; both ARE dy (da = db = dy), no copy is made,
//                    so they stay valid exactly as long as dy does.
// No broadcasting: the shapes must be equal. No parameters.
// (There is deliberately no op named `add` in cpdiff::ops: this class would hide it from layers.)
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/host_device.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

// z = x + y, as a named functor for ops::transform (usable by a CUDA kernel as well).
struct plus_fn {
  template <class T>
  CPDIFF_HD T operator()(T x, T y) const { return x + y; }
};

template <class T = float, class B = cpu>
class add {
 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  explicit add(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit add(const B& be) : be_(be) {}
  add()
    requires stateless_backend<B>
  = default;

  cview forward(cview a, cview b) {
    CPDIFF_CHECK(a.shape() == b.shape(), shape_error, "nn::add::forward", "inputs ", a.shape(), " and ", b.shape(),
                 " differ in shape (no broadcasting)");
    expect_nonempty(a, "nn::add::forward", "input");
    y_.resize(a.shape());
    // y = a + b
    transform(be_, a, b, y_.view(), plus_fn{});
    return y_.cview();
  }

  // da = dy ; db = dy
  std::pair<cview, cview> backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::add::backward");
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, "nn::add::backward", "dy: expected shape ", y_.shape(),
                 " (the last forward output), got ", dy.shape());
    return {dy, dy};
  }

  template <class F>
  void for_each_parameter(F&&) {}

 private:
  B be_{};
  tensor<T, B> y_;
};

}  // namespace cpdiff::nn
