#pragma once
// avg_pool2d<K, Stride, T, B>: PyTorch's nn.AvgPool2d(K, Stride) with a square window, no padding, floor mode.
//   x [N, C, H, W] -> y [N, C, Hout, Wout],  Hout = (H - K) / Stride + 1, likewise Wout
//   y[n, c, i, j] = mean of x[n, c, i*Stride + p, j*Stride + q] over p, q in [0, K)
// Parameter-free: constructed without a store.
#include <string>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t K, std::size_t Stride = K, class T = float, class B = cpu>
class avg_pool2d {
  static_assert(K > 0, "cpdiff::nn::avg_pool2d: the window size K must be positive");
  static_assert(Stride > 0, "cpdiff::nn::avg_pool2d: Stride must be positive (K for non-overlapping windows)");

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t kernel_size = K, stride = Stride;

  explicit avg_pool2d(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit avg_pool2d(const B& be) : be_(be) {}
  avg_pool2d()
    requires stateless_backend<B>
  = default;

  cview forward(cview x) {
    constexpr const char* where = "nn::avg_pool2d::forward";
    expect_rank(x, 4, where, "input [N, C, H, W]");
    expect_nonempty(x, where, "input [N, C, H, W]");
    CPDIFF_CHECK(x.dim(2) >= K && x.dim(3) >= K, shape_error, where, "input [N, C, H, W]: height ", x.dim(2),
                 " or width ", x.dim(3), " is smaller than the window ", K, ", got shape ", x.shape());
    x_shape_ = x.shape();
    g_ = {x.dim(0) * x.dim(1), x.dim(2), x.dim(3), (x.dim(2) - K) / Stride + 1, (x.dim(3) - K) / Stride + 1,
          K, K, Stride, Stride};
    y_.resize({x.dim(0), x.dim(1), g_.out_h, g_.out_w});  // [N, C, Hout, Wout]
    // y = window means of x
    avg_pool2d_forward(be_, g_, x.data(), y_.data());
    return y_.cview();
  }

  cview backward(cview dy) {
    constexpr const char* where = "nn::avg_pool2d::backward";
    CPDIFF_CHECK(x_shape_.rank() == 4, shape_error, where, "backward called before forward");
    expect_shape(dy, y_.shape(), where, "dy [N, C, Hout, Wout]");
    // dx[n, c, h, w] = sum over the windows holding (h, w) of dy / K^2
    dx_.resize(x_shape_);  // [N, C, H, W]
    avg_pool2d_backward(be_, g_, dy.data(), dx_.data());
    return dx_.cview();
  }

 private:
  B be_;
  pool2d_geometry g_;
  shape x_shape_;
  tensor<T, B> y_, dx_;
};

static_assert(layer<avg_pool2d<2>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
