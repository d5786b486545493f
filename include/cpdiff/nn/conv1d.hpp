#pragma once
// conv1d<Cin, Cout, K, T, B, Stride, Pad, Dilation, Bias>: PyTorch's nn.Conv1d (groups = 1, zero padding),
// same layout and default init.
//   x [N, Cin, L]   W [Cout, Cin, K]   b [Cout]   y [N, Cout, Lout]
//   Lout = (L + 2*Pad - Dilation*(K-1) - 1) / Stride + 1
//   y[n, o, l] = b[o] + sum_{c, k} W[o, c, k] * x[n, c, l*Stride - Pad + k*Dilation]
// Template parameters, in order: channels in and out, kernel size, value type, backend, then the geometry
// (stride, padding, dilation) and whether there is a bias, each defaulting to PyTorch's default.
#include <cmath>
#include <string>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/nn/weight_bias.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t Cin, std::size_t Cout, std::size_t K, class T = float, class B = cpu, std::size_t Stride = 1,
          std::size_t Pad = 0, std::size_t Dilation = 1, bool Bias = true>
class conv1d : public weight_bias<T, B, Bias> {
  using base = weight_bias<T, B, Bias>;
  using base::ps_, base::be_, base::w_, base::b_;

  static_assert(Cin > 0 && Cout > 0, "cpdiff::nn::conv1d: Cin and Cout must be positive");
  static_assert(K > 0, "cpdiff::nn::conv1d: the kernel size K must be positive");
  static_assert(Stride > 0, "cpdiff::nn::conv1d: Stride must be positive (1 for no striding)");
  static_assert(Dilation > 0, "cpdiff::nn::conv1d: Dilation must be positive (1 for an ordinary kernel)");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_channels = Cin, out_channels = Cout, kernel_size = K;
  static constexpr std::size_t in_size = Cin, out_size = Cout;
  static constexpr std::size_t stride = Stride, padding = Pad, dilation = Dilation;
  static constexpr bool has_bias = Bias;

  // Output length for input length len, 0 when the padded input is shorter than the dilated kernel.
  static constexpr std::size_t out_length(std::size_t len) { return conv_out_size(len, K, Stride, Pad, Dilation); }

  // PyTorch's default init: W and b ~ U(-1/sqrt(Cin*K), 1/sqrt(Cin*K)) (kaiming_uniform with a = sqrt(5)).
  conv1d(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : base(ps, name, g, {Cout, Cin, K}, Cout, Cin * K, trainable) {}

  // A hint to the backend (conv_geometry.hpp): automatic by default; the CPU backend always uses im2col + GEMM.
  void set_algorithm(conv_algorithm a) { algo_ = a; }

  cview forward(cview x) {
    constexpr const char* where = "nn::conv1d::forward";
    expect_rank(x, 3, where, "input [N, Cin, L]");
    expect_dim(x, 1, Cin, where, "input [N, Cin, L]");
    expect_nonempty(x, where, "input [N, Cin, L]");
    CPDIFF_CHECK(out_length(x.dim(2)) > 0, shape_error, where, "input [N, Cin, L]: length ", x.dim(2),
                 " padded by ", Pad, " on each side is shorter than the dilated kernel ", Dilation * (K - 1) + 1,
                 ", got shape ", x.shape());
    x_ = x;
    g_ = conv1d_geometry(x.dim(0), Cin, Cout, x.dim(2), K, Stride, Pad, Dilation);
    y_.resize({g_.n, Cout, g_.out_w});  // [N, Cout, Lout]
    g_.algo = algo_;
    work_.resize({conv_workspace_size(be_, g_)});
    // y_n [Cout, Lout] = W [Cout, Cin*K] col(x_n) + b   (im2col + GEMM per sample)
    conv_forward(be_, g_, x.data(), ps_->value(w_).data(), this->bias_data(), y_.data(), work_.data(), work_.size());
    return y_.cview();
  }

  cview backward(cview dy) {
    constexpr const char* where = "nn::conv1d::backward";
    CPDIFF_CHECK(x_.data() != nullptr, shape_error, where, "backward called before forward");
    expect_shape(dy, y_.shape(), where, "dy [N, Cout, Lout]");
    work_.resize({conv_workspace_size(be_, g_)});
    // dW [Cout, Cin, K] += sum_n dy_n col(x_n)^T
    if (this->weight_trainable())
      conv_backward_weight(be_, g_, x_.data(), dy.data(), ps_->grad(w_).data(), work_.data(), work_.size());
    // db [Cout] += sum_{n, l} dy[n, :, l]
    if constexpr (Bias)
      if (this->bias_trainable()) conv_bias_backward(be_, g_.n, Cout, g_.out_w, dy.data(), ps_->grad(b_).data());
    // dx [N, Cin, L] = col2im(W^T dy_n)
    dx_.resize(x_.shape());
    conv_backward_data(be_, g_, dy.data(), ps_->value(w_).data(), dx_.data(), work_.data(), work_.size());
    return dx_.cview();
  }

 private:
  conv_algorithm algo_ = conv_algorithm::automatic;
  conv_geometry g_;
  cview x_;
  tensor<T, B> y_, dx_, work_;  // work_: im2col columns and per-thread dW partials
};

static_assert(layer<conv1d<1, 1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
