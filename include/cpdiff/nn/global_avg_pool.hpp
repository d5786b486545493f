#pragma once
// global_avg_pool<T, B>: the mean over every position of each (sample, channel), keeping the pooled axes
// as size 1: PyTorch's AdaptiveAvgPool1d(1) on [N, C, L] and AdaptiveAvgPool2d(1) on [N, C, H, W].
//   x [N, C, L]    -> y [N, C, 1]       y[n, c]    = mean_l x[n, c, l]
//   x [N, C, H, W] -> y [N, C, 1, 1]    y[n, c]    = mean_{h, w} x[n, c, h, w]
// Parameter-free: constructed without a store. Flatten the result to [N, C] with a reshape.
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <class T = float, class B = cpu>
class global_avg_pool {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  explicit global_avg_pool(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit global_avg_pool(const B& be) : be_(be) {}
  global_avg_pool()
    requires stateless_backend<B>
  = default;

  cview forward(cview x) {
    constexpr const char* where = "nn::global_avg_pool::forward";
    CPDIFF_CHECK(x.rank() == 3 || x.rank() == 4, shape_error, where,
                 "input: expected rank 3 [N, C, L] or rank 4 [N, C, H, W], got shape ", x.shape());
    expect_nonempty(x, where, "input");
    x_shape_ = x.shape();
    rows_ = x.dim(0) * x.dim(1);
    len_ = x.size() / rows_;
    y_.resize(x.rank() == 3 ? shape{x.dim(0), x.dim(1), 1} : shape{x.dim(0), x.dim(1), 1, 1});
    // y[n, c] = mean of x[n, c, ...]
    global_avg_pool_forward(be_, rows_, len_, x.data(), y_.data());
    return y_.cview();
  }

  cview backward(cview dy) {
    constexpr const char* where = "nn::global_avg_pool::backward";
    CPDIFF_CHECK(x_shape_.rank() != 0, shape_error, where, "backward called before forward");
    expect_shape(dy, y_.shape(), where, "dy");
    // dx[n, c, ...] = dy[n, c] / (positions per row)
    dx_.resize(x_shape_);
    global_avg_pool_backward(be_, rows_, len_, dy.data(), dx_.data());
    return dx_.cview();
  }

 private:
  B be_;
  shape x_shape_;
  std::size_t rows_ = 0, len_ = 0;
  tensor<T, B> y_, dx_;
};

static_assert(layer<global_avg_pool<>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
