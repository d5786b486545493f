#pragma once
// instance_norm1d<C, T, B, Affine>: PyTorch's nn.InstanceNorm1d(C, eps, affine=Affine) without
// running statistics (track_running_stats=False, the default): every sample and channel is
// normalised over its length with the biased variance, in training and evaluation alike.
//   x [N, C, L]   mean, istd [N*C]   xhat [N, C, L]   (Affine) weight, bias [C]   y [N, C, L]
// The p-diff autoencoder and the U-Net put one (without affine) before every convolution, so this
// is on the hot path: one pass for the statistics (double accumulators), OpenMP over the N*C rows
// (or over chunks of each row for a small batch of long signals), and without affine y is xhat
// itself, so backward needs no second buffer and no recomputation.
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t C, class T = float, class B = cpu, bool Affine = false>
class instance_norm1d {
  static_assert(C > 0, "cpdiff::nn::instance_norm1d: the channel count C must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t channels = C;
  static constexpr std::size_t in_size = C, out_size = C;
  static constexpr bool affine = Affine;

  // Without affine: no parameters, no store.
  explicit instance_norm1d(const parameter_store<T, B>& ps, double eps = 1e-5)
    requires(!Affine)
      : be_(ps.backend()), eps_(T(eps)) {}
  explicit instance_norm1d(const B& be, double eps = 1e-5)
    requires(!Affine)
      : be_(be), eps_(T(eps)) {}
  explicit instance_norm1d(double eps = 1e-5)
    requires(!Affine && stateless_backend<B>)
      : eps_(T(eps)) {}

  // With affine: weight [C] = 1 and bias [C] = 0 (PyTorch's init; the rng is taken only so that
  // every layer with parameters is built the same way).
  instance_norm1d(parameter_store<T, B>& ps, const std::string& name, [[maybe_unused]] rng& g, double eps = 1e-5)
    requires Affine
      : ps_(&ps), be_(ps.backend()), eps_(T(eps)) {
    w_ = ps.add(name + ".weight", {C});
    b_ = ps.add(name + ".bias", {C});
    fill(be_, ps.value(w_), T(1));
  }

  double eps() const { return double(eps_); }
  view weight() requires Affine { return ps_->value(w_); }
  view bias() requires Affine { return ps_->value(b_); }
  param_id weight_id() const requires Affine { return w_; }
  param_id bias_id() const requires Affine { return b_; }

  cview forward(cview x) {
    constexpr const char* where = "nn::instance_norm1d::forward";
    expect_rank(x, 3, where, "input [N, C, L]");
    expect_dim(x, 1, C, where, "input [N, C, L]");
    expect_nonempty(x, where, "input [N, C, L]");
    CPDIFF_CHECK(x.dim(2) > 1, shape_error, where, "input [N, C, L]: expected more than 1 element along L, got shape ",
                 x.shape());
    const std::size_t N = x.dim(0), L = x.dim(2);
    mean_.resize({N * C});
    istd_.resize({N * C});
    y_.resize(x.shape());
    if constexpr (Affine) {
      xhat_.resize(x.shape());
      // xhat[N*C, L] = (x - mean) * istd, per row
      row_norm_forward(be_, x.data(), N * C, L, eps_, xhat_.data(), mean_.data(), istd_.data());
      // y[N, C, L] = xhat * weight[c] + bias[c]
      channel_affine(be_, xhat_.data(), ps_->value(w_).data(), ps_->value(b_).data(), N, C, L, y_.data());
    } else {
      // y[N*C, L] = xhat = (x - mean) * istd, per row
      row_norm_forward(be_, x.data(), N * C, L, eps_, y_.data(), mean_.data(), istd_.data());
    }
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::instance_norm1d::backward");
    expect_shape(dy, y_.shape(), "nn::instance_norm1d::backward", "dy (the shape of the last forward output)");
    const std::size_t N = y_.dim(0), L = y_.dim(2);
    dx_.resize(y_.shape());
    if constexpr (Affine) {
      // dweight[C] += sum_{N,L} dy * xhat ; dbias[C] += sum_{N,L} dy
      channel_affine_backward(be_, xhat_.data(), dy.data(), N, C, L, grad_or_null(w_), grad_or_null(b_));
      // g[N, C, L] = dL/dxhat = dy * weight[c]
      channel_affine(be_, dy.data(), ps_->value(w_).data(), pointer_t<B, const T>{}, N, C, L, dx_.data());
      // dx = istd * (g - mean_L(g) - xhat * mean_L(g * xhat)), per row, in place
      row_norm_backward(be_, xhat_.data(), dx_.data(), istd_.data(), N * C, L, dx_.data());
    } else {
      // dx = istd * (dy - mean_L(dy) - xhat * mean_L(dy * xhat)), per row; xhat is y
      row_norm_backward(be_, y_.data(), dy.data(), istd_.data(), N * C, L, dx_.data());
    }
    return dx_.cview();
  }

  // The per-row statistics of the last forward, [N*C] each.
  cview mean() const { return mean_.cview(); }
  cview inv_std() const { return istd_.cview(); }

  template <class F>
  void for_each_parameter(F&& f) {
    if constexpr (Affine) {
      f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
      f(ps_->entry(b_), ps_->value(b_), ps_->grad(b_));
    }
  }

 private:
  pointer_t<B, T> grad_or_null(param_id id) {
    return ps_->entry(id).trainable ? ps_->grad(id).data() : pointer_t<B, T>{};
  }

  parameter_store<T, B>* ps_ = nullptr;
  B be_;
  T eps_;
  param_id w_, b_;
  tensor<T, B> y_, xhat_, dx_, mean_, istd_;
};

static_assert(layer<instance_norm1d<1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
