#pragma once
// linear<In, Out>: y = x W^T + b over the last dimension (PyTorch's nn.Linear, same layout).
//   x  [..., In]   W [Out, In]   b [Out]   y [..., Out]
// In or Out may be cpdiff::dynamic where the size follows the data (a U-Net's sequence length);
// the constructor then takes the sizes.
#include <cmath>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/nn/weight_bias.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t In, std::size_t Out, class T = float, class B = cpu, bool Bias = true>
class linear : public weight_bias<T, B, Bias> {
  using base = weight_bias<T, B, Bias>;
  using base::ps_, base::be_, base::w_, base::b_;

  static_assert(In > 0 && Out > 0, "cpdiff::nn::linear: In and Out must be positive (or cpdiff::dynamic)");
  static constexpr bool is_dynamic = In == dynamic || Out == dynamic;

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_features = In, out_features = Out;  // may be dynamic: see in() / out()
  static constexpr std::size_t in_size = In, out_size = Out;  // the layer contract's static sizes (nn/layer.hpp)
  static constexpr bool has_bias = Bias;

  // PyTorch's default init: W and b ~ U(-1/sqrt(In), 1/sqrt(In)) (kaiming_uniform with a = sqrt(5)).
  linear(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
    requires(!is_dynamic)
      : linear(ps, name, g, In, Out, trainable) {}
  // Sizes at run time; each must equal the template's unless that one is dynamic.
  linear(parameter_store<T, B>& ps, const std::string& name, rng& g, std::size_t in, std::size_t out,
         bool trainable = true)
      : base(ps, name, g, {out, in}, out, checked_in(in, out, name), trainable), in_(in), out_(out) {}

  std::size_t in() const { return in_; }
  std::size_t out() const { return out_; }

  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() >= 1 && x.dim(x.rank() - 1) == in_, shape_error, "nn::linear::forward",
                 "input: expected last dimension ", in_, ", got shape ", x.shape());
    x_ = x;
    const std::size_t rows = x.size() / in_;
    shape ys = x.shape();
    ys[ys.rank() - 1] = out_;
    y_.resize(ys);
    // y[rows, out] = x[rows, in] W^T (+ b)
    gemm(be_, ops::trans::no, ops::trans::yes, rows, out_, in_, T(1), x.data(), in_, ps_->value(w_).data(), in_,
              T(0), y_.data(), out_);
    if constexpr (Bias) add_row_vector(be_, y_.view().reshape({rows, out_}), cview(ps_->value(b_)));
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(x_.data() != nullptr, "nn::linear::backward");
    CPDIFF_CHECK(dy.size() == y_.size(), shape_error, "nn::linear::backward", "dy: expected shape ", y_.shape(),
                 ", got ", dy.shape());
    const std::size_t rows = dy.size() / out_;
    const bool train = this->weight_trainable();
    // dW[out, in] += dy^T x ; db[out] += sum_rows dy
    if (train) {
      gemm(be_, ops::trans::yes, ops::trans::no, out_, in_, rows, T(1), dy.data(), out_, x_.data(), in_, T(1),
                ps_->grad(w_).data(), in_);
      if constexpr (Bias) add_column_sums(be_, dy.reshape({rows, out_}), ps_->grad(b_));
    }
    // dx[rows, in] = dy W
    dx_.resize(x_.shape());
    gemm(be_, ops::trans::no, ops::trans::no, rows, in_, out_, T(1), dy.data(), out_, ps_->value(w_).data(), in_,
              T(0), dx_.data(), in_);
    return dx_.cview();
  }

 private:
  // in, once the sizes are known to fit (checked before anything is registered in the store).
  static std::size_t checked_in(std::size_t in, std::size_t out, const std::string& name) {
    CPDIFF_CHECK(in > 0 && out > 0 && (In == dynamic || In == in) && (Out == dynamic || Out == out), config_error,
                 "nn::linear", "'", name, "': sizes ", in, " -> ", out, " do not fit the layer's template sizes");
    return in;
  }
  std::size_t in_, out_;
  cview x_;
  tensor<T, B> y_, dx_;
};

static_assert(layer<linear<1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
