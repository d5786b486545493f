#pragma once
// conv_transpose1d<Cin, Cout, K, T, B, Stride, Pad, OutputPadding, Dilation, Bias>: PyTorch's
// nn.ConvTranspose1d (groups = 1), same layout and default init.
//   x [N, Cin, L]   W [Cin, Cout, K]   b [Cout]   y [N, Cout, Lout]
//   Lout = (L - 1)*Stride - 2*Pad + Dilation*(K-1) + OutputPadding + 1
//   y[n, o, l*Stride - Pad + k*Dilation] += W[c, o, k] * x[n, c, l]   (then + b[o])
// It is the adjoint (the data gradient) of conv1d<Cout, Cin, K> with the same weight tensor, so the
// kernels are conv1d's with the two passes swapped (conv_transpose1d_geometry in conv_geometry.hpp).
// Template parameters, in order: channels in and out, kernel size, value type, backend, then the geometry
// (stride, padding, output padding, dilation) and whether there is a bias, each defaulting to PyTorch's.
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
          std::size_t Pad = 0, std::size_t OutputPadding = 0, std::size_t Dilation = 1, bool Bias = true>
class conv_transpose1d : public weight_bias<T, B, Bias> {
  using base = weight_bias<T, B, Bias>;
  using base::ps_, base::be_, base::w_, base::b_;

  static_assert(Cin > 0 && Cout > 0, "cpdiff::nn::conv_transpose1d: Cin and Cout must be positive");
  static_assert(K > 0, "cpdiff::nn::conv_transpose1d: the kernel size K must be positive");
  static_assert(Stride > 0, "cpdiff::nn::conv_transpose1d: Stride must be positive (1 for no striding)");
  static_assert(Dilation > 0, "cpdiff::nn::conv_transpose1d: Dilation must be positive (1 for an ordinary kernel)");
  static_assert(OutputPadding < Stride || OutputPadding < Dilation,
                "cpdiff::nn::conv_transpose1d: OutputPadding must be smaller than Stride or Dilation (as in PyTorch)");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_channels = Cin, out_channels = Cout, kernel_size = K;
  static constexpr std::size_t in_size = Cin, out_size = Cout;
  static constexpr std::size_t stride = Stride, padding = Pad, output_padding = OutputPadding, dilation = Dilation;
  static constexpr bool has_bias = Bias;

  // Output length for input length len, 0 when the padding would leave nothing.
  static constexpr std::size_t out_length(std::size_t len) {
    return conv_transpose_out_size(len, K, Stride, Pad, OutputPadding, Dilation);
  }

  // PyTorch's default init with ITS fan-in for a transposed weight [Cin, Cout, K]: weight.size(1) * K = Cout*K,
  // so W and b ~ U(-1/sqrt(Cout*K), 1/sqrt(Cout*K)).
  conv_transpose1d(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : base(ps, name, g, {Cin, Cout, K}, Cout, Cout * K, trainable) {}

  // A hint to the backend (conv_geometry.hpp): automatic by default; the CPU backend always uses im2col + GEMM.
  void set_algorithm(conv_algorithm a) { algo_ = a; }

  cview forward(cview x) {
    constexpr const char* where = "nn::conv_transpose1d::forward";
    expect_rank(x, 3, where, "input [N, Cin, L]");
    expect_dim(x, 1, Cin, where, "input [N, Cin, L]");
    expect_nonempty(x, where, "input [N, Cin, L]");
    CPDIFF_CHECK(out_length(x.dim(2)) > 0, shape_error, where, "input [N, Cin, L]: padding ", Pad,
                 " on each side leaves no output for length ", x.dim(2), ", got shape ", x.shape());
    x_ = x;
    // The adjoint conv: [N, Cout, Lout] -> [N, Cin, L] with weight [Cin, Cout, K]
    g_ = conv_transpose1d_geometry(x.dim(0), Cin, Cout, x.dim(2), K, Stride, Pad, OutputPadding, Dilation);
    y_.resize({g_.n, Cout, g_.in_w});  // [N, Cout, Lout]
    g_.algo = algo_;
    work_.resize({conv_workspace_size(be_, g_)});
    // y = col2im(W^T x_n)   (the adjoint conv's data gradient)
    conv_backward_data(be_, g_, x.data(), ps_->value(w_).data(), y_.data(), work_.data(), work_.size());
    // y += b
    if constexpr (Bias) conv_bias_forward(be_, g_.n, Cout, g_.in_w, ps_->value(b_).data(), y_.data());
    return y_.cview();
  }

  cview backward(cview dy) {
    constexpr const char* where = "nn::conv_transpose1d::backward";
    CPDIFF_CHECK(x_.data() != nullptr, shape_error, where, "backward called before forward");
    expect_shape(dy, y_.shape(), where, "dy [N, Cout, Lout]");
    work_.resize({conv_workspace_size(be_, g_)});
    // dW [Cin, Cout, K] += sum_n x_n col(dy_n)^T   (the adjoint conv's weight gradient, roles swapped)
    if (this->weight_trainable())
      conv_backward_weight(be_, g_, dy.data(), x_.data(), ps_->grad(w_).data(), work_.data(), work_.size());
    // db [Cout] += sum_{n, l} dy[n, :, l]
    if constexpr (Bias)
      if (this->bias_trainable()) conv_bias_backward(be_, g_.n, Cout, g_.in_w, dy.data(), ps_->grad(b_).data());
    // dx [N, Cin, L] = W col(dy_n)   (the adjoint conv's forward, no bias)
    dx_.resize(x_.shape());
    conv_forward(be_, g_, dy.data(), ps_->value(w_).data(), pointer_t<B, const T>{}, dx_.data(),
                 work_.data(), work_.size());
    return dx_.cview();
  }

 private:
  conv_algorithm algo_ = conv_algorithm::automatic;
  conv_geometry g_;  // of the adjoint conv: c_in = Cout, in_w = Lout, c_out = Cin, out_w = L
  cview x_;
  tensor<T, B> y_, dx_, work_;  // work_: im2col columns and per-thread dW partials
};

static_assert(layer<conv_transpose1d<1, 1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
