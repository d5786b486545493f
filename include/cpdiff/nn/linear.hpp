#pragma once
// linear<In, Out>: y = x W^T + b over the last dimension (PyTorch's nn.Linear, same layout).
//   x  [..., In]   W [Out, In]   b [Out]   y [..., Out]
// In or Out may be cpdiff::dynamic where the size follows the data (a U-Net's sequence length);
// the constructor then takes the sizes.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/nn/weight_bias.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

template <std::size_t In, std::size_t Out, class T = float, class B = cpu, bool Bias = true>
class linear : public weight_bias<T, B, Bias> {
  using base = weight_bias<T, B, Bias>;
  using base::ps_, base::be_, base::w_, base::b_;

  static_assert(In > 0 && Out > 0, "cpdiff::nn::linear: In and Out must be positive (or cpdiff::dynamic)");
  static constexpr bool is_dynamic = In == dynamic || Out == dynamic;

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_features = In, out_features = Out;  // may be dynamic: see in() / out()
  static constexpr std::size_t in_size = In, out_size = Out;  // the layer contract's static sizes (nn/layer.hpp)
  static constexpr bool has_bias = Bias;

  // PyTorch's default init: W and b ~ U(-1/sqrt(In), 1/sqrt(In)) (kaiming_uniform with a = sqrt(5)).
  linear(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
    requires(!is_dynamic)
      : linear(ps, name, g, In, Out, trainable) {}
  // Sizes at run time; each must equal the template's unless that one is dynamic.
  linear(parameter_store<T, B>& ps, const std::string& name, rng& g, std::size_t in, std::size_t out,
         bool trainable = true)
      : base(ps, name, g, {out, in}, out, checked_in(in, out, name), trainable), in_(in), out_(out) {}

  std::size_t in() const { return in_; }
  std::size_t out() const { return out_; }
  // The module path: the weight's name without ".weight" ("vit.encoder.layer.0.attention.attention.query").
  std::string module_name() const {
    const std::string& w = ps_->entry(w_).name;
    return w.substr(0, w.size() - std::string(".weight").size());
  }

  // PEFT's LoRA on this projection: y += s (x A^T) B^T with s = alpha / r (alpha / sqrt(r) with rsLoRA),
  // A [r, In] ~ U(-1/sqrt(In), 1/sqrt(In)) and B [Out, r] = 0 (PEFT's init, so the output is unchanged), registered
  // as "<module>.lora_A.weight" / "<module>.lora_B.weight" (PEFT's keys after "base_model.model."). The weight
  // and bias are frozen. Once per layer, before training (it adds to the store).
  void attach_lora(std::size_t rank, double alpha, rng& g, bool rslora = false) {
    constexpr const char* where = "nn::linear::attach_lora";
    CPDIFF_CHECK(lora_rank_ == 0, config_error, where, "'", module_name(), "' has a LoRA already");
    CPDIFF_CHECK(rank > 0 && rank <= std::min(in_, out_) && alpha > 0, config_error, where, "'", module_name(),
                 "': rank ", rank, " must lie in [1, min(in, out) = ", std::min(in_, out_), "] and alpha ", alpha,
                 " must be positive");
    lora_rank_ = rank;
    lora_alpha_ = alpha;
    lora_rslora_ = rslora;
    lora_scaling_ = rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank);
    lora_a_ = ps_->add(module_name() + ".lora_A.weight", {rank, in_});
    lora_b_ = ps_->add(module_name() + ".lora_B.weight", {out_, rank});
    const T bound = T(1) / std::sqrt(T(in_));
    fill_uniform(be_, ps_->value(lora_a_), -bound, bound, g.seed, g.take_stream());
    ps_->set_trainable(w_, false);
    if constexpr (Bias) ps_->set_trainable(b_, false);
  }
  std::size_t lora_rank() const { return lora_rank_; }  // 0: none
  // PEFT's lora_dropout: in training mode the LoRA path reads drop(x) (each element kept with probability 1 - p
  // and scaled by 1 / (1 - p)), the base path x. Each masked forward takes a fresh Philox stream from `g`, which
  // must outlive the layer; backward regenerates the mask from (seed, stream) instead of storing it.
  void set_lora_dropout(double p, rng& g) {
    constexpr const char* where = "nn::linear::set_lora_dropout";
    CPDIFF_CHECK(lora_rank_ > 0, config_error, where, "'", module_name(), "' has no LoRA: call attach_lora first");
    CPDIFF_CHECK(p >= 0.0 && p < 1.0, config_error, where, "'", module_name(),
                 "': dropout probability must be in [0, 1), got ", p);
    lora_p_ = p;
    lora_g_ = &g;
  }
  double lora_dropout() const { return lora_p_; }
  void set_training(bool on) { training_ = on; }  // LoRA dropout acts only while training
  bool training() const { return training_; }
  template <class F>
  void for_each_parameter(F&& f) {
    base::for_each_parameter(f);
    if (lora_rank_ > 0)
      for (const param_id id : {lora_a_, lora_b_}) f(ps_->entry(id), ps_->value(id), ps_->grad(id));
  }
  double lora_alpha() const { return lora_alpha_; }
  bool lora_rslora() const { return lora_rslora_; }
  double lora_scaling() const { return lora_scaling_; }
  param_id lora_a_id() const { return lora_a_; }
  param_id lora_b_id() const { return lora_b_; }

  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() >= 1 && x.dim(x.rank() - 1) == in_, shape_error, "nn::linear::forward",
                 "input: expected last dimension ", in_, ", got shape ", x.shape());
    x_ = x;
    const std::size_t rows = x.size() / in_;
    shape ys = x.shape();
    ys[ys.rank() - 1] = out_;
    y_.resize(ys);
    // y[rows, out] = x[rows, in] W^T (+ b)
    gemm(be_, ops::trans::no, ops::trans::yes, rows, out_, in_, T(1), x.data(), in_, ps_->value(w_).data(), in_,
              T(0), y_.data(), out_);
    if constexpr (Bias) add_row_vector(be_, y_.view().reshape({rows, out_}), cview(ps_->value(b_)));
    if (lora_rank_ > 0) {
      const std::size_t r = lora_rank_;
      // xd [rows, in] = drop(x) (x itself without dropout)
      dropped_ = training_ && lora_p_ > 0.0;
      pointer_t<B, const T> xd = x.data();
      if (dropped_) {
        drop_seed_ = lora_g_->seed;
        drop_stream_ = lora_g_->take_stream();
        lora_xd_.resize({rows, in_});
        dropout_mask_apply(be_, x.data(), lora_xd_.data(), rows * in_, lora_p_, drop_seed_, drop_stream_);
        xd = lora_xd_.cview().data();
      }
      // t [rows, r] = xd A^T ;  y += s t B^T
      lora_t_.resize({rows, r});
      gemm(be_, ops::trans::no, ops::trans::yes, rows, r, in_, T(1), xd, in_, lora_value(lora_a_), in_, T(0),
           lora_t_.data(), r);
      gemm(be_, ops::trans::no, ops::trans::yes, rows, out_, r, T(lora_scaling_), lora_t_.cview().data(), r,
           lora_value(lora_b_), r, T(1), y_.data(), out_);
    }
    return y_.cview();
  }

  cview backward(cview dy) {
    expect_forward_ran(x_.data() != nullptr, "nn::linear::backward");
    CPDIFF_CHECK(dy.size() == y_.size(), shape_error, "nn::linear::backward", "dy: expected shape ", y_.shape(),
                 ", got ", dy.shape());
    const std::size_t rows = dy.size() / out_;
    const bool train = this->weight_trainable();
    // dW[out, in] += dy^T x ; db[out] += sum_rows dy
    if (train) {
      gemm(be_, ops::trans::yes, ops::trans::no, out_, in_, rows, T(1), dy.data(), out_, x_.data(), in_, T(1),
                ps_->grad(w_).data(), in_);
      if constexpr (Bias) add_column_sums(be_, dy.reshape({rows, out_}), ps_->grad(b_));
    }
    // dx[rows, in] = dy W
    dx_.resize(x_.shape());
    gemm(be_, ops::trans::no, ops::trans::no, rows, in_, out_, T(1), dy.data(), out_, ps_->value(w_).data(), in_,
              T(0), dx_.data(), in_);
    if (lora_rank_ > 0) lora_backward(dy, rows);
    return dx_.cview();
  }

 private:
  pointer_t<B, const T> lora_value(param_id id) const { return std::as_const(*ps_).value(id).data(); }
  // dB [Out, r] += s dy^T t ;  dt [rows, r] = s dy B ;  dA [r, In] += dt^T xd ;  dx += drop(dt A)
  void lora_backward(cview dy, std::size_t rows) {
    const std::size_t r = lora_rank_;
    const T s = T(lora_scaling_);
    if (ps_->entry(lora_b_).trainable)
      gemm(be_, ops::trans::yes, ops::trans::no, out_, r, rows, s, dy.data(), out_, lora_t_.cview().data(), r, T(1),
           ps_->grad(lora_b_).data(), r);
    lora_dt_.resize({rows, r});
    gemm(be_, ops::trans::no, ops::trans::no, rows, r, out_, s, dy.data(), out_, lora_value(lora_b_), r, T(0),
         lora_dt_.data(), r);
    const pointer_t<B, const T> xd = dropped_ ? lora_xd_.cview().data() : x_.data();
    if (ps_->entry(lora_a_).trainable)
      gemm(be_, ops::trans::yes, ops::trans::no, r, in_, rows, T(1), lora_dt_.cview().data(), r, xd, in_, T(1),
           ps_->grad(lora_a_).data(), in_);
    if (!dropped_) {
      gemm(be_, ops::trans::no, ops::trans::no, rows, in_, r, T(1), lora_dt_.cview().data(), r, lora_value(lora_a_),
           in_, T(1), dx_.data(), in_);
      return;
    }
    // dxd [rows, in] = dt A ;  dx += drop(dxd)   (the forward's mask)
    lora_dxd_.resize({rows, in_});
    gemm(be_, ops::trans::no, ops::trans::no, rows, in_, r, T(1), lora_dt_.cview().data(), r, lora_value(lora_a_), in_,
         T(0), lora_dxd_.data(), in_);
    dropout_mask_apply(be_, lora_dxd_.cview().data(), lora_dxd_.data(), rows * in_, lora_p_, drop_seed_, drop_stream_);
    axpy(be_, T(1), lora_dxd_.cview(), dx_.view().reshape({rows, in_}));
  }

  // in, once the sizes are known to fit (checked before anything is registered in the store).
  static std::size_t checked_in(std::size_t in, std::size_t out, const std::string& name) {
    CPDIFF_CHECK(in > 0 && out > 0 && (In == dynamic || In == in) && (Out == dynamic || Out == out), config_error,
                 "nn::linear", "'", name, "': sizes ", in, " -> ", out, " do not fit the layer's template sizes");
    return in;
  }
  std::size_t in_, out_;
  cview x_;
  tensor<T, B> y_, dx_;
  std::size_t lora_rank_ = 0;
  double lora_alpha_ = 0, lora_scaling_ = 0;
  bool lora_rslora_ = false;
  param_id lora_a_{}, lora_b_{};
  tensor<T, B> lora_t_, lora_dt_, lora_xd_, lora_dxd_;  // [rows, r], [rows, r], drop(x) [rows, in], [rows, in]
  double lora_p_ = 0.0;
  rng* lora_g_ = nullptr;
  bool training_ = true, dropped_ = false;  // dropped_: the last forward masked the LoRA path
  std::uint64_t drop_seed_ = 0, drop_stream_ = 0;
};

static_assert(layer<linear<1, 1>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
