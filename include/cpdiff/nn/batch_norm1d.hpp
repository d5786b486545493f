#pragma once
// batch_norm1d<C, T, B>: PyTorch's nn.BatchNorm1d(C, eps, momentum) with affine weight / bias and
// running statistics.
//   x [N, C] or [N, C, L]   weight, bias, running_mean, running_var [C]   y: the shape of x
// Training: normalise with the batch statistics of each channel over N (and L), biased variance,
// and update running_mean = (1-momentum) running_mean + momentum mean, likewise running_var with
// the UNBIASED batch variance (as PyTorch). Evaluation: normalise with the running statistics.
// running_mean / running_var live in the parameter store as non-trainable entries
// ("<name>.running_mean", "<name>.running_var"), so checkpoints carry them and optimisers skip them.
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t C, class T = float, class B = cpu>
class batch_norm1d {
  static_assert(C > 0, "cpdiff::nn::batch_norm1d: the channel count C must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t channels = C;
  static constexpr std::size_t in_size = C, out_size = C;

  // weight = 1, bias = 0, running_mean = 0, running_var = 1 (PyTorch); the rng is not used.
  batch_norm1d(parameter_store<T, B>& ps, const std::string& name, [[maybe_unused]] rng& g, double eps = 1e-5,
               double momentum = 0.1)
      : ps_(&ps), be_(ps.backend()), eps_(T(eps)), momentum_(T(momentum)) {
    CPDIFF_CHECK(eps > 0 && momentum >= 0 && momentum <= 1, config_error, "nn::batch_norm1d",
                 "expected eps > 0 and momentum in [0, 1], got eps ", eps, ", momentum ", momentum);
    w_ = ps.add(name + ".weight", {C});
    b_ = ps.add(name + ".bias", {C});
    rm_ = ps.add(name + ".running_mean", {C}, false);
    rv_ = ps.add(name + ".running_var", {C}, false);
    fill(be_, ps.value(w_), T(1));
    fill(be_, ps.value(rv_), T(1));
  }

  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  double eps() const { return double(eps_); }
  double momentum() const { return double(momentum_); }

  view weight() { return ps_->value(w_); }
  view bias() { return ps_->value(b_); }
  view running_mean() { return ps_->value(rm_); }
  view running_var() { return ps_->value(rv_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const { return b_; }
  param_id running_mean_id() const { return rm_; }
  param_id running_var_id() const { return rv_; }

  cview forward(cview x) {
    constexpr const char* where = "nn::batch_norm1d::forward";
    CPDIFF_CHECK(x.rank() == 2 || x.rank() == 3, shape_error, where,
                 "input: expected [N, C] or [N, C, L] (rank 2 or 3), got shape ", x.shape());
    expect_dim(x, 1, C, where, "input [N, C, (L)]");
    expect_nonempty(x, where, "input [N, C, (L)]");
    const std::size_t N = x.dim(0), L = x.rank() == 3 ? x.dim(2) : 1;
    mean_.resize({C});
    istd_.resize({C});
    xhat_.resize(x.shape());
    y_.resize(x.shape());
    fwd_training_ = training_;
    pointer_t<B, const T> mean = mean_.data();
    if (training_) {
      CPDIFF_CHECK(N * L > 1, shape_error, where, "expected more than 1 value per channel when training, got input shape ",
                   x.shape());
      var_.resize({C});
      // mean[C], var[C] = batch statistics over N and L (biased variance)
      channel_moments(be_, x.data(), N, C, L, mean_.data(), var_.data());
      // running_mean, running_var updated with momentum (unbiased variance)
      running_stats_update(be_, mean_.data(), var_.data(), C, N * L, momentum_, ps_->value(rm_).data(),
                           ps_->value(rv_).data());
      // istd[C] = 1 / sqrt(var + eps)
      channel_inverse_std(be_, var_.data(), C, eps_, istd_.data());
    } else {
      mean = ps_->value(rm_).data();
      // istd[C] = 1 / sqrt(running_var + eps)
      channel_inverse_std(be_, ps_->value(rv_).data(), C, eps_, istd_.data());
    }
    // xhat[N, C, L] = (x - mean[c]) * istd[c]
    channel_normalize(be_, x.data(), mean, istd_.data(), N, C, L, xhat_.data());
    // y[N, C, L] = xhat * weight[c] + bias[c]
    channel_affine(be_, xhat_.data(), ps_->value(w_).data(),
                   ps_->value(b_).data(), N, C, L, y_.data());
    return y_.cview();
  }

  // Differentiates the mode of the last forward: batch statistics (training) depend on x, running
  // statistics (evaluation) are constants.
  cview backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::batch_norm1d::backward");
    expect_shape(dy, y_.shape(), "nn::batch_norm1d::backward", "dy (the shape of the last forward output)");
    const std::size_t N = y_.dim(0), L = y_.rank() == 3 ? y_.dim(2) : 1;
    dx_.resize(y_.shape());
    // dweight[C] += sum_{N,L} dy * xhat ; dbias[C] += sum_{N,L} dy
    channel_affine_backward(be_, xhat_.data(), dy.data(), N, C, L, grad_or_null(w_),
                            grad_or_null(b_));
    // g[N, C, L] = dL/dxhat = dy * weight[c]
    channel_affine(be_, dy.data(), ps_->value(w_).data(), pointer_t<B, const T>{}, N,
                   C, L, dx_.data());
    if (fwd_training_) {
      // dx = istd[c] * (g - mean_{N,L}(g) - xhat * mean_{N,L}(g * xhat)), in place
      channel_norm_backward(be_, xhat_.data(), dx_.data(),
                            istd_.data(), N, C, L, dx_.data());
    } else {
      // dx = g * istd[c], in place
      channel_affine(be_, dx_.data(), istd_.data(),
                     pointer_t<B, const T>{}, N, C, L, dx_.data());
    }
    return dx_.cview();
  }

  // Visits weight, bias and the two (non-trainable) running statistics.
  template <class F>
  void for_each_parameter(F&& f) {
    for (param_id id : {w_, b_, rm_, rv_}) f(ps_->entry(id), ps_->value(id), ps_->grad(id));
  }

 private:
  pointer_t<B, T> grad_or_null(param_id id) {
    return ps_->entry(id).trainable ? ps_->grad(id).data() : pointer_t<B, T>{};
  }

  parameter_store<T, B>* ps_;
  B be_;
  T eps_, momentum_;
  param_id w_, b_, rm_, rv_;
  bool training_ = true, fwd_training_ = true;
  tensor<T, B> y_, xhat_, dx_, mean_, var_, istd_;
};

static_assert(layer<batch_norm1d<1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
