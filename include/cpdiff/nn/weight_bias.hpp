#pragma once
// weight_bias<T, B, Bias>: the weight and optional bias that a linear or convolution layer registers,
// with PyTorch's default init for both, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform, a = sqrt(5)).
// Layers derive from it for the parameter plumbing (accessors, visiting, frozen checks) and keep the maths.
#include <cmath>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::nn {

template <class T, class B, bool Bias>
class weight_bias {
 public:
  using view = tensor_view<T, memory_space_t<B>>;

  view weight() { return ps_->value(w_); }
  view bias() requires Bias { return ps_->value(b_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const requires Bias { return b_; }

  template <class F>
  void for_each_parameter(F&& f) {
    f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
    if constexpr (Bias) f(ps_->entry(b_), ps_->value(b_), ps_->grad(b_));
  }

 protected:
  // "<name>.weight" of w_shape and "<name>.bias" [bias_size], both U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  weight_bias(parameter_store<T, B>& ps, const std::string& name, rng& g, shape w_shape, std::size_t bias_size,
              std::size_t fan_in, bool trainable)
      : ps_(&ps), be_(ps.backend()) {
    const T bound = T(1) / std::sqrt(T(fan_in));
    w_ = ps.add(name + ".weight", w_shape, trainable);
    fill_uniform(be_, ps.value(w_), -bound, bound, g.seed, g.take_stream());
    if constexpr (Bias) {
      b_ = ps.add(name + ".bias", {bias_size}, trainable);
      fill_uniform(be_, ps.value(b_), -bound, bound, g.seed, g.take_stream());
    }
  }

  bool weight_trainable() const { return ps_->entry(w_).trainable; }
  bool bias_trainable() const {
    if constexpr (Bias)
      return ps_->entry(b_).trainable;
    else
      return false;
  }
  // The bias values, or nullptr without a bias.
  pointer_t<B, const T> bias_data() const {
    if constexpr (Bias)
      return std::as_const(*ps_).value(b_).data();
    else
      return nullptr;
  }

  parameter_store<T, B>* ps_;
  B be_;
  param_id w_, b_;
};

}  // namespace cpdiff::nn
