#pragma once
// Shape-only layers: no arithmetic and no copies. Both return a view of their INPUT's data with a
// new shape (unlike other layers, whose output is a buffer they own), and backward returns dy
// reshaped back. The input must therefore stay alive while the output is used, as it must anyway
// for the layers before it to run backward.
//
// flatten<Start = 1, End = -1>: PyTorch's nn.Flatten; dims Start..End (negative counts from the end)
// merged into one.   x [N, C, L]  ->  y [N, C*L]   with the defaults.
// reshape: PyTorch's nn.Unflatten(1, dims) generalised; keeps dim 0 (the batch) and gives the rest
// a new shape, fixed at construction.   x [N, ...]  ->  y [N, dims...]
#include <cstddef>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/tensor_view.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <int Start = 1, int End = -1, class T = float, class B = cpu>
class flatten {
  static_assert((Start < 0) != (End < 0) || Start <= End,
                "cpdiff::nn::flatten: Start must not come after End (both count from the front, or both from the back)");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr int start_dim = Start, end_dim = End;
  static constexpr std::size_t in_size = dynamic, out_size = dynamic;  // the size axis changes

  flatten() = default;
  explicit flatten(const parameter_store<T, B>&) {}  // no kernels: nothing of the backend to keep

  // x [d0, ..., d(r-1)] -> y [d0, ..., d(s-1), ds * ... * de, d(e+1), ...]
  cview forward(cview x) {
    const int r = static_cast<int>(x.rank());
    const int s = Start < 0 ? Start + r : Start, e = End < 0 ? End + r : End;
    CPDIFF_CHECK(r >= 1 && 0 <= s && s <= e && e < r, shape_error, "nn::flatten::forward", "cannot flatten dims [",
                 Start, ", ", End, "] of input shape ", x.shape());
    expect_nonempty(x, "nn::flatten::forward", "input");
    x_shape_ = x.shape();
    std::size_t ys[shape::max_rank], n = 0, merged = 1;
    for (int i = 0; i < s; ++i) ys[n++] = x.dim(static_cast<std::size_t>(i));
    for (int i = s; i <= e; ++i) merged *= x.dim(static_cast<std::size_t>(i));
    ys[n++] = merged;
    for (int i = e + 1; i < r; ++i) ys[n++] = x.dim(static_cast<std::size_t>(i));
    y_shape_ = shape::from_range(ys, ys + n);
    return x.reshape(y_shape_);
  }

  // dx = dy, viewed with the input's shape
  cview backward(cview dy) {
    expect_forward_ran(y_shape_.rank() > 0, "nn::flatten::backward");
    CPDIFF_CHECK(dy.shape() == y_shape_, shape_error, "nn::flatten::backward", "dy: expected shape ", y_shape_,
                 " (the last forward output), got ", dy.shape());
    return dy.reshape(x_shape_);
  }

  template <class F>
  void for_each_parameter(F&&) {}

 private:
  shape x_shape_, y_shape_;
};

template <class T = float, class B = cpu>
class reshape {
 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  static constexpr std::size_t in_size = dynamic, out_size = dynamic;  // the size axis changes

  // dims: the shape of one sample after the reshape, e.g. {C, L}; the batch dimension is kept.
  explicit reshape(shape dims) : dims_(dims) {
    CPDIFF_CHECK(dims.rank() >= 1 && dims.rank() < shape::max_rank && dims.size() > 0, config_error, "nn::reshape",
                 "per-sample shape ", dims, " must have rank 1..", shape::max_rank - 1, " and no zero dimension");
  }

  const shape& dims() const { return dims_; }

  // x [N, ...] (dims_.size() elements per sample) -> y [N, dims...]
  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() >= 1 && x.size() > 0 && x.shape().inner_size() == dims_.size(), shape_error,
                 "nn::reshape::forward", "input: expected [N, ...] with ", dims_.size(), " elements per sample (to make ",
                 dims_, "), got shape ", x.shape());
    x_shape_ = x.shape();
    std::size_t ys[shape::max_rank];
    ys[0] = x.dim(0);
    for (std::size_t i = 0; i < dims_.rank(); ++i) ys[i + 1] = dims_[i];
    y_shape_ = shape::from_range(ys, ys + dims_.rank() + 1);
    return x.reshape(y_shape_);
  }

  // dx = dy, viewed with the input's shape
  cview backward(cview dy) {
    expect_forward_ran(y_shape_.rank() > 0, "nn::reshape::backward");
    CPDIFF_CHECK(dy.shape() == y_shape_, shape_error, "nn::reshape::backward", "dy: expected shape ", y_shape_,
                 " (the last forward output), got ", dy.shape());
    return dy.reshape(x_shape_);
  }

  template <class F>
  void for_each_parameter(F&&) {}

 private:
  shape dims_, x_shape_, y_shape_;
};

static_assert(layer<flatten<>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
