#pragma once
// layer_norm<D, T, B>: PyTorch's nn.LayerNorm(D, eps) (elementwise affine): every vector along the
// last dimension is normalised with the biased variance, then scaled and shifted per element.
//   x [..., D]   mean, istd [rows = size/D]   weight, bias [D]   y [..., D]
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t D, class T = float, class B = cpu>
class layer_norm {
  static_assert(D > 0, "cpdiff::nn::layer_norm: the normalised size D must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t features = D;
  static constexpr std::size_t in_size = D, out_size = D;

  // weight = 1, bias = 0 (PyTorch); the rng is not used.
  layer_norm(parameter_store<T, B>& ps, const std::string& name, [[maybe_unused]] rng& g, double eps = 1e-5)
      : ps_(&ps), be_(ps.backend()), eps_(T(eps)) {
    w_ = ps.add(name + ".weight", {D});
    b_ = ps.add(name + ".bias", {D});
    fill(be_, ps.value(w_), T(1));
  }

  double eps() const { return double(eps_); }
  view weight() { return ps_->value(w_); }
  view bias() { return ps_->value(b_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const { return b_; }

  cview forward(cview x) {
    constexpr const char* where = "nn::layer_norm::forward";
    CPDIFF_CHECK(x.rank() >= 1 && x.dim(x.rank() - 1) == D, shape_error, where, "input: expected last dimension ", D,
                 ", got shape ", x.shape());
    expect_nonempty(x, where, "input [..., D]");
    const std::size_t rows = x.size() / D;
    mean_.resize({rows});
    istd_.resize({rows});
    xhat_.resize(x.shape());
    y_.resize(x.shape());
    // xhat[rows, D] = (x - mean) * istd, per row
    row_norm_forward(be_, x.data(), rows, D, eps_, xhat_.data(), mean_.data(), istd_.data());
    // y[rows, D] = xhat * weight[d] + bias[d]   (channels layout [rows, D, 1])
    channel_affine(be_, xhat_.data(), ps_->value(w_).data(), ps_->value(b_).data(), rows, D, 1, y_.data());
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::layer_norm::backward");
    expect_shape(dy, y_.shape(), "nn::layer_norm::backward", "dy (the shape of the last forward output)");
    const std::size_t rows = y_.size() / D;
    dx_.resize(y_.shape());
    // dweight[D] += sum_rows dy * xhat ; dbias[D] += sum_rows dy
    channel_affine_backward(be_, xhat_.data(), dy.data(), rows, D, 1, grad_or_null(w_), grad_or_null(b_));
    // g[rows, D] = dL/dxhat = dy * weight[d]
    channel_affine(be_, dy.data(), ps_->value(w_).data(), pointer_t<B, const T>{}, rows, D, 1, dx_.data());
    // dx = istd * (g - mean_D(g) - xhat * mean_D(g * xhat)), per row, in place
    row_norm_backward(be_, xhat_.data(), dx_.data(), istd_.data(), rows, D, dx_.data());
    return dx_.cview();
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
    f(ps_->entry(b_), ps_->value(b_), ps_->grad(b_));
  }

 private:
  pointer_t<B, T> grad_or_null(param_id id) {
    return ps_->entry(id).trainable ? ps_->grad(id).data() : pointer_t<B, T>{};
  }

  parameter_store<T, B>* ps_;
  B be_;
  T eps_;
  param_id w_, b_;
  tensor<T, B> y_, xhat_, dx_, mean_, istd_;
};

static_assert(layer<layer_norm<1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
