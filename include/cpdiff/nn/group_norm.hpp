#pragma once
// group_norm<Groups, C, T, B>: PyTorch's nn.GroupNorm(Groups, C, eps) with affine weight / bias.
// The C channels of each sample are split into Groups groups of C/Groups consecutive channels; each
// (sample, group) is normalised over its channels and length with the biased variance. In a
// row-major [N, C, L] tensor a group is one contiguous row of (C/Groups)*L elements.
//   x [N, C] or [N, C, L]   mean, istd [N*Groups]   weight, bias [C] (per channel)   y: the shape of x
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t Groups, std::size_t C, class T = float, class B = cpu>
class group_norm {
  static_assert(Groups > 0 && C > 0, "cpdiff::nn::group_norm: Groups and C must be positive");
  static_assert(C % Groups == 0, "cpdiff::nn::group_norm: C must be a multiple of Groups");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t groups = Groups, channels = C;
  static constexpr std::size_t in_size = C, out_size = C;

  // weight = 1, bias = 0 (PyTorch); the rng is not used.
  group_norm(parameter_store<T, B>& ps, const std::string& name, [[maybe_unused]] rng& g, double eps = 1e-5)
      : ps_(&ps), be_(ps.backend()), eps_(T(eps)) {
    w_ = ps.add(name + ".weight", {C});
    b_ = ps.add(name + ".bias", {C});
    fill(be_, ps.value(w_), T(1));
  }

  double eps() const { return double(eps_); }
  view weight() { return ps_->value(w_); }
  view bias() { return ps_->value(b_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const { return b_; }

  cview forward(cview x) {
    constexpr const char* where = "nn::group_norm::forward";
    CPDIFF_CHECK(x.rank() == 2 || x.rank() == 3, shape_error, where,
                 "input: expected [N, C] or [N, C, L] (rank 2 or 3), got shape ", x.shape());
    expect_dim(x, 1, C, where, "input [N, C, (L)]");
    expect_nonempty(x, where, "input [N, C, (L)]");
    const std::size_t N = x.dim(0), L = x.rank() == 3 ? x.dim(2) : 1;
    mean_.resize({N * Groups});
    istd_.resize({N * Groups});
    xhat_.resize(x.shape());
    y_.resize(x.shape());
    // xhat[N*Groups, (C/Groups)*L] = (x - mean) * istd, per row
    row_norm_forward(be_, x.data(), N * Groups, (C / Groups) * L, eps_, xhat_.data(), mean_.data(), istd_.data());
    // y[N, C, L] = xhat * weight[c] + bias[c]
    channel_affine(be_, xhat_.data(), ps_->value(w_).data(), ps_->value(b_).data(), N, C, L, y_.data());
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::group_norm::backward");
    expect_shape(dy, y_.shape(), "nn::group_norm::backward", "dy (the shape of the last forward output)");
    const std::size_t N = y_.dim(0), L = y_.rank() == 3 ? y_.dim(2) : 1;
    dx_.resize(y_.shape());
    // dweight[C] += sum_{N,L} dy * xhat ; dbias[C] += sum_{N,L} dy
    channel_affine_backward(be_, xhat_.data(), dy.data(), N, C, L, grad_or_null(w_), grad_or_null(b_));
    // g[N, C, L] = dL/dxhat = dy * weight[c]
    channel_affine(be_, dy.data(), ps_->value(w_).data(), pointer_t<B, const T>{}, N, C, L, dx_.data());
    // dx = istd * (g - mean_group(g) - xhat * mean_group(g * xhat)), per (sample, group) row, in place
    row_norm_backward(be_, xhat_.data(), dx_.data(), istd_.data(), N * Groups, (C / Groups) * L, dx_.data());
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

static_assert(layer<group_norm<1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
