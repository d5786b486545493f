#pragma once
// concat<Dim>: torch.cat((a, b), dim=Dim) for two inputs (a U-Net's skip connection).
// Dim counts from the front, or from the back when negative (-1 is the last dimension).
//   a [..., na, ...]   b [..., nb, ...]   y [..., na + nb, ...]   (equal everywhere but Dim)
//
// A two-input op, so it does not fit the one-input `layer` concept (core/concepts.hpp):
//   forward(a, b) -> y      (a view of a buffer the layer owns; a and b are not cached, only shapes)
//   backward(dy)  -> {da, db}, a std::pair of views of buffers the layer owns
// No parameters; backward only splits dy.
#include <cstddef>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <int Dim, class T = float, class B = cpu>
class concat {
  static_assert(Dim < static_cast<int>(shape::max_rank) && Dim >= -static_cast<int>(shape::max_rank),
                "cpdiff::nn::concat: Dim must lie in [-5, 4] (tensors have rank at most 5)");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr int dim = Dim;

  explicit concat(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit concat(const B& be) : be_(be) {}
  concat()
    requires stateless_backend<B>
  = default;

  cview forward(cview a, cview b) {
    const int r = static_cast<int>(a.rank());
    const int d = Dim < 0 ? Dim + r : Dim;
    CPDIFF_CHECK(a.rank() == b.rank() && 0 <= d && d < r, shape_error, "nn::concat::forward",
                 "cannot join inputs ", a.shape(), " and ", b.shape(), " along dimension ", Dim,
                 " (ranks must agree and include that dimension)");
    const std::size_t du = static_cast<std::size_t>(d);
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < a.rank(); ++i) {
      CPDIFF_CHECK(i == du || a.dim(i) == b.dim(i), shape_error, "nn::concat::forward", "inputs ", a.shape(),
                   " and ", b.shape(), " differ in dimension ", i, ", not only in the joined dimension ", d);
      if (i < du) outer *= a.dim(i);
      if (i > du) inner *= a.dim(i);
    }
    expect_nonempty(a, "nn::concat::forward", "first input");
    expect_nonempty(b, "nn::concat::forward", "second input");
    a_shape_ = a.shape();
    b_shape_ = b.shape();
    na_ = a.dim(du);
    nb_ = b.dim(du);
    outer_ = outer;
    inner_ = inner;
    shape ys = a.shape();
    ys[du] = na_ + nb_;
    y_.resize(ys);
    // y[outer, na + nb, inner] = [a | b]
    concat_forward(be_, a.data(), b.data(), y_.data(), outer_, na_, nb_, inner_);
    return y_.cview();
  }

  std::pair<cview, cview> backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::concat::backward");
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, "nn::concat::backward", "dy: expected shape ", y_.shape(),
                 " (the last forward output), got ", dy.shape());
    da_.resize(a_shape_);
    db_.resize(b_shape_);
    // da = dy[:, :na, :] ; db = dy[:, na:, :]
    concat_backward(be_, dy.data(), da_.data(), db_.data(), outer_, na_, nb_, inner_);
    return {da_.cview(), db_.cview()};
  }

  template <class F>
  void for_each_parameter(F&&) {}

 private:
  B be_{};
  shape a_shape_, b_shape_;
  std::size_t outer_ = 0, na_ = 0, nb_ = 0, inner_ = 0;
  tensor<T, B> y_, da_, db_;
};

}  // namespace cpdiff::nn
