#pragma once
// lora_linear<In, Out, Rank, Alpha>: a frozen linear layer plus a trainable low-rank update (LoRA,
// Hu et al. 2021), with PEFT's parameter names, layouts, initialisation and scaling.
//   y = x W^T + b + s * (drop(x) A^T) B^T,   s = Alpha / Rank  (Alpha / sqrt(Rank) with RsLora)
//   x [..., In]   W [Out, In]   b [Out]   A [Rank, In]   B [Out, Rank]   y [..., Out]
//
// Parameters, registered in the store under PEFT's names:
//   "<name>.base_layer.weight" [Out, In], "<name>.base_layer.bias" [Out]   frozen (trainable = false)
//   "<name>.lora_A.weight"     [Rank, In], "<name>.lora_B.weight" [Out, Rank]   trainable
// `name` is the module path ("encoder.layer.0.attention.self.query"); lora::extract uses it as the key.
// Backward respects each entry's trainable flag, so a base made trainable with ps.set_trainable gets
// gradients too; by default only A and B (and dx) are computed.
//
// Alpha is a std::ratio (std::ratio<16>, std::ratio<1, 2>) so that the scaling is part of the type.
// Dropout (probability p, set at run time) acts on the LoRA path only and only in training mode, as
// nn::dropout does: each masked forward takes a fresh Philox stream from the rng given at construction
// (so that rng must outlive the layer, and restoring its next_stream resumes a run exactly), and backward
// regenerates the same mask from (seed, stream) instead of storing it.
//
// merge() folds s * B A into W (inference: one GEMM instead of three); while merged, forward skips the
// LoRA path and draws no dropout, and backward gives A and B no gradient (the merged forward does not
// read them). unmerge() subtracts the A and B that were merged, even if A or B changed meanwhile.
//
// The base math (two lines: y = x W^T + b, dx = dy W) is written here rather than composed from
// nn::linear so that the base and LoRA terms accumulate into one output buffer without a copy.
#include <cmath>
#include <cstdint>
#include <ratio>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/nn/layer.hpp"

namespace cpdiff::nn {

namespace detail {
// The value of a std::ratio (1 for anything else, so that only the "must be a std::ratio" assert fires).
template <class R>
constexpr double ratio_value() {
  if constexpr (requires { R::num; R::den; })
    return static_cast<double>(R::num) / static_cast<double>(R::den);
  else
    return 1.0;
}
}  // namespace detail

template <std::size_t In, std::size_t Out, std::size_t Rank, class Alpha, class T = float, class B = cpu,
          bool Bias = true, bool RsLora = false>
class lora_linear {
  static_assert(In > 0 && Out > 0, "cpdiff::nn::lora_linear: In and Out must be positive");
  static_assert(Rank > 0, "cpdiff::nn::lora_linear: Rank must be at least 1 (a rank-0 adapter is the base layer: use nn::linear)");
  static_assert(Rank <= (In < Out ? In : Out),
                "cpdiff::nn::lora_linear: Rank must be at most min(In, Out); a larger rank adds parameters but no "
                "expressiveness. Lower Rank");
  static_assert(requires { Alpha::num; Alpha::den; },
                "cpdiff::nn::lora_linear: Alpha must be a std::ratio, e.g. std::ratio<16> for lora_alpha = 16");
  static_assert(detail::ratio_value<Alpha>() > 0, "cpdiff::nn::lora_linear: Alpha (lora_alpha) must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using alpha_ratio = Alpha;
  static constexpr std::size_t in_features = In, out_features = Out, rank = Rank;
  static constexpr std::size_t in_size = In, out_size = Out;
  static constexpr bool has_bias = Bias, use_rslora = RsLora;
  static constexpr double alpha = detail::ratio_value<Alpha>();

  // s = alpha / r, or alpha / sqrt(r) with rsLoRA.
  static double scaling_value() { return RsLora ? alpha / std::sqrt(double(Rank)) : alpha / double(Rank); }

  // Init as PyTorch / PEFT: W, b ~ U(-1/sqrt(In), 1/sqrt(In)); A ~ U(-1/sqrt(In), 1/sqrt(In))
  // (kaiming_uniform with a = sqrt(5)); B = 0, so a fresh layer computes exactly the base layer.
  lora_linear(parameter_store<T, B>& ps, const std::string& name, rng& g, double dropout = 0.0)
      : ps_(&ps), be_(ps.backend()), name_(name), g_(&g) {
    set_dropout(dropout);
    const T bound = T(1) / std::sqrt(T(In));
    w_ = ps.add(name + ".base_layer.weight", {Out, In}, /*trainable=*/false);
    fill_uniform(be_, ps.value(w_), -bound, bound, g.seed, g.take_stream());
    if constexpr (Bias) {
      b_ = ps.add(name + ".base_layer.bias", {Out}, /*trainable=*/false);
      fill_uniform(be_, ps.value(b_), -bound, bound, g.seed, g.take_stream());
    }
    a_ = ps.add(name + ".lora_A.weight", {Rank, In}, true);
    fill_uniform(be_, ps.value(a_), -bound, bound, g.seed, g.take_stream());
    bw_ = ps.add(name + ".lora_B.weight", {Out, Rank}, true);  // zeros (the store zero-fills)
  }

  const std::string& name() const { return name_; }
  const B& backend() const { return be_; }
  view weight() const { return ps_->value(w_); }
  view bias() const requires Bias { return ps_->value(b_); }
  view lora_A() const { return ps_->value(a_); }
  view lora_B() const { return ps_->value(bw_); }
  param_id weight_id() const { return w_; }
  param_id bias_id() const requires Bias { return b_; }
  param_id lora_A_id() const { return a_; }
  param_id lora_B_id() const { return bw_; }
  T scaling() const { return static_cast<T>(scaling_value()); }

  // Dropout probability on the LoRA path, 0 <= p < 1.
  void set_dropout(double p) {
    CPDIFF_CHECK(p >= 0.0 && p < 1.0, config_error, "nn::lora_linear::set_dropout", "layer '", name_,
                 "': dropout probability must be in [0, 1), got ", p);
    p_ = p;
  }
  double dropout() const { return p_; }
  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  // The Philox stream of the last masked forward (for tests and debugging).
  std::uint64_t last_stream() const { return drop_stream_; }

  bool merged() const { return merged_; }
  // W += s * B A  (a no-op when already merged, as in PEFT)
  void merge() {
    if (merged_) return;
    merged_a_.resize({Rank, In});
    merged_b_.resize({Out, Rank});
    copy(be_, cview(lora_A()), merged_a_.view());
    copy(be_, cview(lora_B()), merged_b_.view());
    // W[Out, In] += s * B[Out, Rank] A[Rank, In]
    gemm(be_, ops::trans::no, ops::trans::no, Out, In, Rank, scaling(), merged_b_.data(), Rank, merged_a_.data(), In,
         T(1), weight().data(), In);
    merged_ = true;
  }
  // W -= s * B A with the A and B that merge() used  (a no-op when not merged)
  void unmerge() {
    if (!merged_) return;
    gemm(be_, ops::trans::no, ops::trans::no, Out, In, Rank, -scaling(), merged_b_.data(), Rank, merged_a_.data(), In,
         T(1), weight().data(), In);
    merged_ = false;
  }

  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() >= 1 && x.dim(x.rank() - 1) == In, shape_error, "nn::lora_linear::forward",
                 "input: expected last dimension ", In, ", got shape ", x.shape());
    expect_nonempty(x, "nn::lora_linear::forward", "input");
    const std::size_t rows = x.size() / In;
    x_ = x;
    fwd_merged_ = merged_;
    dropped_ = training_ && p_ > 0.0 && !merged_;
    shape ys = x.shape();
    ys[ys.rank() - 1] = Out;
    y_.resize(ys);
    // y[rows, Out] = x[rows, In] W^T (+ b)
    gemm(be_, ops::trans::no, ops::trans::yes, rows, Out, In, T(1), x.data(), In, weight().data(), In, T(0), y_.data(),
         Out);
    if constexpr (Bias) add_row_vector(be_, y_.view().reshape({rows, Out}), cview(bias()));
    if (merged_) return y_.cview();
    // xd[rows, In] = drop(x)
    pointer_t<B, const T> xd = x.data();
    if (dropped_) {
      drop_seed_ = g_->seed;
      drop_stream_ = g_->take_stream();
      xd_.resize({rows, In});
      dropout_mask_apply(be_, x.data(), xd_.data(), rows * In, p_, drop_seed_, drop_stream_);
      xd = xd_.data();
    }
    // h[rows, Rank] = xd A^T
    h_.resize({rows, Rank});
    gemm(be_, ops::trans::no, ops::trans::yes, rows, Rank, In, T(1), xd, In, lora_A().data(), In, T(0), h_.data(), Rank);
    // y[rows, Out] += s * h B^T
    gemm(be_, ops::trans::no, ops::trans::yes, rows, Out, Rank, scaling(), h_.data(), Rank, lora_B().data(), Rank, T(1),
         y_.data(), Out);
    return y_.cview();
  }

  cview backward(cview dy) {
    CPDIFF_CHECK(x_.data() != nullptr, config_error, "nn::lora_linear::backward", "layer '", name_,
                 "': backward called before forward");
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, "nn::lora_linear::backward", "dy: expected shape ", y_.shape(),
                 ", got ", dy.shape());
    const std::size_t rows = dy.size() / Out;
    const T s = scaling();
    // dW[Out, In] += dy^T x ; db[Out] += sum_rows dy      (only for a base made trainable)
    if (ps_->entry(w_).trainable)
      gemm(be_, ops::trans::yes, ops::trans::no, Out, In, rows, T(1), dy.data(), Out, x_.data(), In, T(1),
           ps_->grad(w_).data(), In);
    if constexpr (Bias)
      if (ps_->entry(b_).trainable) add_column_sums(be_, dy.reshape({rows, Out}), ps_->grad(b_));
    // dx[rows, In] = dy W
    dx_.resize(x_.shape());
    gemm(be_, ops::trans::no, ops::trans::no, rows, In, Out, T(1), dy.data(), Out, weight().data(), In, T(0),
         dx_.data(), In);
    if (fwd_merged_) return dx_.cview();
    const pointer_t<B, const T> xd = dropped_ ? pointer_t<B, const T>(xd_.data()) : x_.data();
    // dB[Out, Rank] += s * dy^T h
    if (ps_->entry(bw_).trainable)
      gemm(be_, ops::trans::yes, ops::trans::no, Out, Rank, rows, s, dy.data(), Out, h_.data(), Rank, T(1),
           ps_->grad(bw_).data(), Rank);
    // dh[rows, Rank] = s * dy B
    dh_.resize({rows, Rank});
    gemm(be_, ops::trans::no, ops::trans::no, rows, Rank, Out, s, dy.data(), Out, lora_B().data(), Rank, T(0),
         dh_.data(), Rank);
    // dA[Rank, In] += dh^T xd
    if (ps_->entry(a_).trainable)
      gemm(be_, ops::trans::yes, ops::trans::no, Rank, In, rows, T(1), dh_.data(), Rank, xd, In, T(1),
           ps_->grad(a_).data(), In);
    if (!dropped_) {
      // dx[rows, In] += dh A
      gemm(be_, ops::trans::no, ops::trans::no, rows, In, Rank, T(1), dh_.data(), Rank, lora_A().data(), In, T(1),
           dx_.data(), In);
    } else {
      // dxd[rows, In] = dh A ; dx += drop(dxd)   (the forward's mask)
      dxd_.resize({rows, In});
      gemm(be_, ops::trans::no, ops::trans::no, rows, In, Rank, T(1), dh_.data(), Rank, lora_A().data(), In, T(0),
           dxd_.data(), In);
      dropout_mask_apply(be_, dxd_.data(), dxd_.data(), rows * In, p_, drop_seed_, drop_stream_);
      axpy(be_, T(1), dxd_.cview(), dx_.view().reshape({rows, In}));
    }
    return dx_.cview();
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
    if constexpr (Bias) f(ps_->entry(b_), ps_->value(b_), ps_->grad(b_));
    f(ps_->entry(a_), ps_->value(a_), ps_->grad(a_));
    f(ps_->entry(bw_), ps_->value(bw_), ps_->grad(bw_));
  }

 private:
  parameter_store<T, B>* ps_;
  B be_;
  std::string name_;
  param_id w_, b_, a_, bw_;
  rng* g_;
  double p_ = 0.0;
  bool training_ = true, merged_ = false;
  // Forward cache: what the last forward did, so backward follows the same path.
  bool fwd_merged_ = false, dropped_ = false;
  std::uint64_t drop_seed_ = 0, drop_stream_ = 0;
  cview x_;                        // [..., In]
  tensor<T, B> xd_, h_, y_;        // drop(x) [rows, In], h [rows, Rank], y [..., Out]
  tensor<T, B> dh_, dxd_, dx_;     // [rows, Rank], [rows, In], [..., In]
  tensor<T, B> merged_a_, merged_b_;  // A [Rank, In], B [Out, Rank] as merged
};

static_assert(layer<lora_linear<1, 1, 1, std::ratio<1>>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
