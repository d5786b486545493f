#pragma once
// conv2d<Cin, Cout, K, T, B, Stride, Pad, Dilation, Bias>: PyTorch's nn.Conv2d with a square kernel and the
// same stride / padding / dilation on both axes (groups = 1, zero padding), same layout and default init.
//   x [N, Cin, H, W]   Wt [Cout, Cin, K, K]   b [Cout]   y [N, Cout, Hout, Wout]
//   Hout = (H + 2*Pad - Dilation*(K-1) - 1) / Stride + 1, likewise Wout
//   y[n, o, i, j] = b[o] + sum_{c, p, q} Wt[o, c, p, q] * x[n, c, i*Stride - Pad + p*Dilation, j*Stride - Pad + q*Dilation]
// Template parameters, in order: channels in and out, kernel size, value type, backend, then the geometry
// (stride, padding, dilation) and whether there is a bias, each defaulting to PyTorch's default.
// The kernels are conv1d's (one conv_geometry for both); a rectangular kernel needs only a new geometry.
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
class conv2d : public weight_bias<T, B, Bias> {
  using base = weight_bias<T, B, Bias>;
  using base::ps_, base::be_, base::w_, base::b_;

  static_assert(Cin > 0 && Cout > 0, "cpdiff::nn::conv2d: Cin and Cout must be positive");
  static_assert(K > 0, "cpdiff::nn::conv2d: the kernel size K must be positive");
  static_assert(Stride > 0, "cpdiff::nn::conv2d: Stride must be positive (1 for no striding)");
  static_assert(Dilation > 0, "cpdiff::nn::conv2d: Dilation must be positive (1 for an ordinary kernel)");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_channels = Cin, out_channels = Cout, kernel_size = K;
  static constexpr std::size_t in_size = Cin, out_size = Cout;
  static constexpr std::size_t stride = Stride, padding = Pad, dilation = Dilation;
  static constexpr bool has_bias = Bias;

  // Output height / width for input height / width len, 0 when the padded input is shorter than the dilated kernel.
  static constexpr std::size_t out_length(std::size_t len) { return conv_out_size(len, K, Stride, Pad, Dilation); }

  // PyTorch's default init: W and b ~ U(-1/sqrt(Cin*K*K), 1/sqrt(Cin*K*K)) (kaiming_uniform with a = sqrt(5)).
  conv2d(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : base(ps, name, g, {Cout, Cin, K, K}, Cout, Cin * K * K, trainable) {}

  // A hint to the backend (conv_geometry.hpp): automatic by default; the CPU backend always uses im2col + GEMM.
  void set_algorithm(conv_algorithm a) { algo_ = a; }

  cview forward(cview x) {
    constexpr const char* where = "nn::conv2d::forward";
    expect_rank(x, 4, where, "input [N, Cin, H, W]");
    expect_dim(x, 1, Cin, where, "input [N, Cin, H, W]");
    expect_nonempty(x, where, "input [N, Cin, H, W]");
    CPDIFF_CHECK(out_length(x.dim(2)) > 0 && out_length(x.dim(3)) > 0, shape_error, where,
                 "input [N, Cin, H, W]: height ", x.dim(2), " or width ", x.dim(3), " padded by ", Pad,
                 " on each side is shorter than the dilated kernel ", Dilation * (K - 1) + 1, ", got shape ",
                 x.shape());
    x_ = x;
    g_ = conv2d_geometry(x.dim(0), Cin, Cout, x.dim(2), x.dim(3), K, Stride, Pad, Dilation);
    y_.resize({g_.n, Cout, g_.out_h, g_.out_w});  // [N, Cout, Hout, Wout]
    g_.algo = algo_;
    work_.resize({conv_workspace_size(be_, g_)});
    // y_n [Cout, Hout*Wout] = Wt [Cout, Cin*K*K] col(x_n) + b   (im2col + GEMM per sample)
    conv_forward(be_, g_, x.data(), ps_->value(w_).data(), this->bias_data(), y_.data(), work_.data(), work_.size());
    return y_.cview();
  }

  cview backward(cview dy) {
    constexpr const char* where = "nn::conv2d::backward";
    CPDIFF_CHECK(x_.data() != nullptr, shape_error, where, "backward called before forward");
    expect_shape(dy, y_.shape(), where, "dy [N, Cout, Hout, Wout]");
    work_.resize({conv_workspace_size(be_, g_)});
    // dWt [Cout, Cin, K, K] += sum_n dy_n col(x_n)^T
    if (this->weight_trainable())
      conv_backward_weight(be_, g_, x_.data(), dy.data(), ps_->grad(w_).data(), work_.data(), work_.size());
    // db [Cout] += sum_{n, i, j} dy[n, :, i, j]
    if constexpr (Bias)
      if (this->bias_trainable())
        conv_bias_backward(be_, g_.n, Cout, g_.out_plane(), dy.data(), ps_->grad(b_).data());
    // dx [N, Cin, H, W] = col2im(Wt^T dy_n)
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

static_assert(layer<conv2d<1, 1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
