#pragma once
// noise_mix: the convex noise augmentation of p-diff's autoencoder, y = (1 - f) x + f eps, eps ~ N(0, 1)
// drawn from a fresh Philox stream of the caller's rng (reproducible from the seed; per sample, so a data-parallel
// shard draws its rows' numbers: rng::first_sample). dy/dx = (1 - f).
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/host_device.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

template <class T>
struct convex_mix_fn {
  T f;
  CPDIFF_HD T operator()(T x, T e) const { return (T(1) - f) * x + f * e; }
};

template <class T, class B>
class noise_mix {
 public:
  using cview = tensor_view<const T, memory_space_t<B>>;
  using view = tensor_view<T, memory_space_t<B>>;

  // y [same as x] = (1 - f) x + f eps
  void forward(const B& be, cview x, view y, T f, rng& g) {
    eps_.resize(x.shape());
    fill_normal(be, eps_.view(), T(0), T(1), g.seed, g.take_stream(), g.sample_offset(x.size() / x.dim(0)));
    transform(be, x, eps_.cview(), y, convex_mix_fn<T>{f});
  }
  // y = E[(1 - f) x + f eps | x] = (1 - f) x: the input the model sees on average, for evaluation without noise
  static void mean(const B& be, cview x, view y, T f) {
    copy(be, x, y);
    scale(be, y, T(1) - f);
  }
  // dx = (1 - f) dy
  void backward(const B& be, cview dy, view dx, T f) { mean(be, dy, dx, f); }

 private:
  tensor<T, B> eps_;
};

}  // namespace cpdiff::models
