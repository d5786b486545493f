#pragma once
// multi_head_attention<Dim, Heads>: scaled dot-product self-attention over a sequence, laid out and named as
// Hugging Face's ViT / BERT attention block (ViTAttention), so LoRA targets and PEFT keys carry over:
//   <name>.attention.query / .key / .value   Linear(Dim -> Dim)   (PEFT's target_modules "query", "value")
//   <name>.output.dense                      Linear(Dim -> Dim)
//
//   x [N, L, D] -> q, k, v = x W^T + b                       [N, L, D] each; head h is columns h d .. (h+1) d - 1,
//                                                            d = D / H
//   S_nh = q_nh k_nh^T / sqrt(d)                             [N, H, L, L]
//   P_nh = softmax(S_nh) along the last axis
//   o_nh = P_nh v_nh                                         [N, L, D], heads side by side
//   y = o W_o^T + b_o                                        [N, L, D]
// No mask and no attention dropout (ViT's defaults).
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/layer.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <std::size_t Dim, std::size_t Heads, class T = float, class B = cpu>
class multi_head_attention {
  static_assert(Dim > 0 && Heads > 0 && Dim % Heads == 0,
                "cpdiff::nn::multi_head_attention: Dim must be a positive multiple of Heads");

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using projection = linear<Dim, Dim, T, B>;
  static constexpr std::size_t in_size = Dim, out_size = Dim;  // the layer contract's static sizes
  static constexpr std::size_t dim = Dim, heads = Heads, head_dim = Dim / Heads;

  multi_head_attention(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : be_(ps.backend()), query_(ps, name + ".attention.query", g, trainable),
        key_(ps, name + ".attention.key", g, trainable), value_(ps, name + ".attention.value", g, trainable),
        out_(ps, name + ".output.dense", g, trainable) {}

  projection& query() { return query_; }
  projection& key() { return key_; }
  projection& value() { return value_; }
  projection& output() { return out_; }

  // x [N, L, D] -> y [N, L, D]
  cview forward(cview x) {
    constexpr const char* where = "nn::multi_head_attention::forward";
    CPDIFF_CHECK(x.rank() == 3 && x.dim(2) == Dim, shape_error, where, "input: expected [N, L, ", Dim, "], got ",
                 x.shape());
    expect_nonempty(x, where, "input [N, L, D]");
    n_ = x.dim(0);
    l_ = x.dim(1);
    // q, k, v [N, L, D]: each projection's own output buffer, valid until its next forward
    q_ = in_member("attention.query", [&] { return query_.forward(x); });
    k_ = in_member("attention.key", [&] { return key_.forward(x); });
    v_ = in_member("attention.value", [&] { return value_.forward(x); });
    p_.resize({n_, Heads, l_, l_});
    o_.resize({n_, l_, Dim});
    const T scale = T(1) / std::sqrt(T(head_dim));
    const std::size_t seq = l_ * Dim, map = Heads * l_ * l_;  // sample strides of [N, L, D] and [N, H, L, L]
    for (std::size_t h = 0; h < Heads; ++h)
      // S_nh [L, L] = q_nh [L, d] k_nh^T / sqrt(d), every n in one call   (into p_, then softmax in place below)
      gemm_batched(be_, ops::trans::no, ops::trans::yes, l_, l_, head_dim, scale, head(q_, 0, h), Dim, seq,
                   head(k_, 0, h), Dim, seq, T(0), scores(p_, 0, h), l_, map, n_);
    // P = softmax(S) along the last axis, rows [N H L, L]
    softmax_rows_forward(be_, n_ * Heads * l_, l_, p_.cview().data(), p_.data());
    for (std::size_t h = 0; h < Heads; ++h)
      // o_nh [L, d] = P_nh [L, L] v_nh [L, d]
      gemm_batched(be_, ops::trans::no, ops::trans::no, l_, head_dim, l_, T(1), scores(std::as_const(p_), 0, h), l_,
                   map, head(v_, 0, h), Dim, seq, T(0), head(o_, 0, h), Dim, seq, n_);
    return in_member("output.dense", [&] { return out_.forward(o_.cview()); });
  }

  // dy [N, L, D] -> dx [N, L, D]; the four projections' gradients are added into the store.
  cview backward(cview dy) {
    constexpr const char* where = "nn::multi_head_attention::backward";
    expect_forward_ran(n_ > 0, where);
    const cview dout = in_member("output.dense", [&] { return out_.backward(dy); });  // d o [N, L, D]
    dp_.resize(p_.shape());
    dq_.resize(q_.shape());
    dk_.resize(q_.shape());
    dv_.resize(q_.shape());
    const T scale = T(1) / std::sqrt(T(head_dim));
    const std::size_t seq = l_ * Dim, map = Heads * l_ * l_;  // sample strides of [N, L, D] and [N, H, L, L]
    for (std::size_t h = 0; h < Heads; ++h) {
      // dP_nh [L, L] = d o_nh [L, d] v_nh^T
      gemm_batched(be_, ops::trans::no, ops::trans::yes, l_, l_, head_dim, T(1), head(dout, 0, h), Dim, seq,
                   head(v_, 0, h), Dim, seq, T(0), scores(dp_, 0, h), l_, map, n_);
      // d v_nh [L, d] = P_nh^T d o_nh
      gemm_batched(be_, ops::trans::yes, ops::trans::no, l_, head_dim, l_, T(1), scores(std::as_const(p_), 0, h), l_,
                   map, head(dout, 0, h), Dim, seq, T(0), head(dv_, 0, h), Dim, seq, n_);
    }
    // dS = P (dP - <dP, P>) per row, in place
    softmax_rows_backward(be_, n_ * Heads * l_, l_, p_.cview().data(), dp_.cview().data(), dp_.data());
    for (std::size_t h = 0; h < Heads; ++h) {
      // d q_nh [L, d] = dS_nh k_nh / sqrt(d) ;  d k_nh [L, d] = dS_nh^T q_nh / sqrt(d)
      gemm_batched(be_, ops::trans::no, ops::trans::no, l_, head_dim, l_, scale, scores(std::as_const(dp_), 0, h), l_,
                   map, head(k_, 0, h), Dim, seq, T(0), head(dq_, 0, h), Dim, seq, n_);
      gemm_batched(be_, ops::trans::yes, ops::trans::no, l_, head_dim, l_, scale, scores(std::as_const(dp_), 0, h), l_,
                   map, head(q_, 0, h), Dim, seq, T(0), head(dk_, 0, h), Dim, seq, n_);
    }
    // dx = dq Wq + dk Wk + dv Wv: the three projections' input gradients, summed
    dx_.resize(q_.shape());
    copy(be_, in_member("attention.query", [&] { return query_.backward(dq_.cview()); }), dx_.view());
    axpy(be_, T(1), in_member("attention.key", [&] { return key_.backward(dk_.cview()); }), dx_.view());
    axpy(be_, T(1), in_member("attention.value", [&] { return value_.backward(dv_.cview()); }), dx_.view());
    return dx_.cview();
  }

  // The attention weights P [N, H, L, L] of the last forward.
  cview attention_probs() const { return p_.cview(); }

 private:
  using buffer = tensor<T, B>;
  // The first element of head h of sample n in a [N, L, D] tensor (row stride D).
  auto head(buffer& t, std::size_t n, std::size_t h) { return t.data() + (n * l_ * Dim + h * head_dim); }
  auto head(cview t, std::size_t n, std::size_t h) const { return t.data() + (n * l_ * Dim + h * head_dim); }
  // The [L, L] block of (n, h) in a [N, H, L, L] tensor.
  auto scores(const buffer& t, std::size_t n, std::size_t h) const { return t.cview().data() + (n * Heads + h) * l_ * l_; }
  auto scores(buffer& t, std::size_t n, std::size_t h) { return t.data() + (n * Heads + h) * l_ * l_; }

  B be_;
  projection query_, key_, value_, out_;
  cview q_, k_, v_;
  buffer p_, o_, dp_, dq_, dk_, dv_, dx_;
  std::size_t n_ = 0, l_ = 0;
};

static_assert(layer<multi_head_attention<4, 2>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
