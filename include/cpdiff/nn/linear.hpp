#pragma once
// linear<In, Out>: y = x W^T + b over the last dimension (PyTorch's nn.Linear, same layout).
//   x  [..., In]   W [Out, In]   b [Out]   y [..., Out]
#include <cmath>
#include <string>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <std::size_t In, std::size_t Out, class T = float, class B = cpu, bool Bias = true>
class linear {
  static_assert(In > 0 && Out > 0, "cpdiff::nn::linear: In and Out must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_features = In, out_features = Out;
  static constexpr bool has_bias = Bias;

  // PyTorch's default init: W and b ~ U(-1/sqrt(In), 1/sqrt(In)) (kaiming_uniform with a = sqrt(5)).
  linear(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : ps_(&ps), be_(ps.backend()) {
    w_ = ps.add(name + ".weight", {Out, In}, trainable);
    const T bound = T(1) / std::sqrt(T(In));
    fill_uniform(be_, ps.value(w_), -bound, bound, g.seed, g.take_stream());
    if constexpr (Bias) {
      b_ = ps.add(name + ".bias", {Out}, trainable);
      fill_uniform(be_, ps.value(b_), -bound, bound, g.seed, g.take_stream());
    }
  }

  view weight() { return ps_->value(w_); }
  view bias() requires Bias { return ps_->value(b_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const requires Bias { return b_; }

  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() >= 1 && x.dim(x.rank() - 1) == In, shape_error, "nn::linear::forward",
                 "input: expected last dimension ", In, ", got shape ", x.shape());
    x_ = x;
    const std::size_t rows = x.size() / In;
    shape ys = x.shape();
    ys[ys.rank() - 1] = Out;
    y_.resize(ys);
    // y[rows, Out] = x[rows, In] W^T (+ b)
    gemm(be_, ops::trans::no, ops::trans::yes, rows, Out, In, T(1), x.data(), In, ps_->value(w_).data(), In,
              T(0), y_.data(), Out);
    if constexpr (Bias) add_row_vector(be_, y_.view().reshape({rows, Out}), cview(ps_->value(b_)));
    return y_.cview();
  }

  cview backward(cview dy) {
    CPDIFF_CHECK(dy.size() == y_.size(), shape_error, "nn::linear::backward", "dy: expected shape ", y_.shape(),
                 ", got ", dy.shape());
    const std::size_t rows = dy.size() / Out;
    const bool train = ps_->entry(w_).trainable;
    // dW[Out, In] += dy^T x ; db[Out] += sum_rows dy
    if (train) {
      gemm(be_, ops::trans::yes, ops::trans::no, Out, In, rows, T(1), dy.data(), Out, x_.data(), In, T(1),
                ps_->grad(w_).data(), In);
      if constexpr (Bias) add_column_sums(be_, dy.reshape({rows, Out}), ps_->grad(b_));
    }
    // dx[rows, In] = dy W
    dx_.resize(x_.shape());
    gemm(be_, ops::trans::no, ops::trans::no, rows, In, Out, T(1), dy.data(), Out, ps_->value(w_).data(), In,
              T(0), dx_.data(), In);
    return dx_.cview();
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
    if constexpr (Bias) f(ps_->entry(b_), ps_->value(b_), ps_->grad(b_));
  }

 private:
  parameter_store<T, B>* ps_;
  B be_;
  param_id w_, b_;
  cview x_;
  tensor<T, B> y_, dx_;
};

}  // namespace cpdiff::nn
