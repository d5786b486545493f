#pragma once
// dropout<T, B>: PyTorch's nn.Dropout(p) with inverted scaling: in training each element is zeroed
// with probability p and the survivors are scaled by 1/(1-p), so evaluation is the identity.
//   x [...]   y [...] (same shape)   dy [...]   dx [...]
// The mask comes from the counter-based Philox RNG (core/rng.hpp): each training forward takes a
// fresh stream from the rng given at construction, and backward regenerates the same mask from
// (seed, stream), so no mask is stored and a run is reproducible from the seed.
#include <cstdint>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <class T = float, class B = cpu>
class dropout {
 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  // p in [0, 1); g must outlive the layer (each training forward takes one stream from it).
  dropout(double p, rng& g, const B& be) : be_(be), g_(&g), p_(p) {
    CPDIFF_CHECK(p >= 0.0 && p < 1.0, config_error, "nn::dropout", "probability p must be in [0, 1), got ", p);
  }
  dropout(double p, rng& g)
    requires stateless_backend<B>
      : dropout(p, g, B{}) {}

  double p() const { return p_; }
  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  // The Philox stream of the last masked forward (for tests and debugging).
  std::uint64_t last_stream() const { return stream_; }

  cview forward(cview x) {
    expect_nonempty(x, "nn::dropout::forward", "input");
    y_.resize(x.shape());
    masked_ = training_ && p_ > 0.0;
    if (masked_) {
      seed_ = g_->seed;
      stream_ = g_->take_stream();
      // y = x * keep / (1 - p), keep = (U(seed, stream, i) >= p)
      dropout_mask_apply(be_, x.data(), y_.data(), x.size(), p_, seed_, stream_);
    } else {
      // y = x (evaluation, or p = 0)
      copy(be_, x, y_.view());
    }
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::dropout::backward");
    expect_shape(dy, y_.shape(), "nn::dropout::backward", "dy (the shape of the last forward output)");
    dx_.resize(dy.shape());
    if (masked_)
      // dx = dy * keep / (1 - p), the same mask as the last forward
      dropout_mask_apply(be_, dy.data(), dx_.data(), dy.size(), p_, seed_, stream_);
    else
      copy(be_, dy, dx_.view());
    return dx_.cview();
  }

  // No parameters: nothing to visit.
  template <class F>
  void for_each_parameter(F&&) {}

 private:
  B be_;
  rng* g_;
  double p_;
  bool training_ = true, masked_ = false;
  std::uint64_t seed_ = 0, stream_ = 0;
  tensor<T, B> y_, dx_;
};

static_assert(layer<dropout<>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
