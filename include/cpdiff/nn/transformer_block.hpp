#pragma once
// transformer_block<Dim, Heads, MlpDim>: a pre-LayerNorm transformer encoder block, laid out and named as Hugging
// Face's ViTLayer:
//   <name>.layernorm_before                 LayerNorm(Dim, eps)
//   <name>.attention                        multi_head_attention<Dim, Heads> (.attention.{query,key,value},
//                                           .output.dense)
//   <name>.layernorm_after                  LayerNorm(Dim, eps)
//   <name>.intermediate.dense               Linear(Dim -> MlpDim), then GELU (exact erf form)
//   <name>.output.dense                     Linear(MlpDim -> Dim)
//
//   x [N, L, D] -> h = x + attention(layernorm_before(x))                          [N, L, D]
//               -> y = h + output.dense(gelu(intermediate.dense(layernorm_after(h))))   [N, L, D]
// eps defaults to 1e-12 (ViT's layer_norm_eps). No dropout (ViT's hidden_dropout_prob 0).
#include <cstddef>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/layer.hpp"
#include "cpdiff/nn/layer_norm.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/multi_head_attention.hpp"

namespace cpdiff::nn {

template <std::size_t Dim, std::size_t Heads, std::size_t MlpDim, class T = float, class B = cpu>
class transformer_block {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t in_size = Dim, out_size = Dim;  // the layer contract's static sizes

  transformer_block(parameter_store<T, B>& ps, const std::string& name, rng& g, double eps = 1e-12)
      : be_(ps.backend()), norm_before_(ps, name + ".layernorm_before", g, eps), attention_(ps, name + ".attention", g),
        norm_after_(ps, name + ".layernorm_after", g, eps), intermediate_(ps, name + ".intermediate.dense", g),
        gelu_(ps), output_(ps, name + ".output.dense", g) {}

  multi_head_attention<Dim, Heads, T, B>& attention() { return attention_; }
  linear<Dim, MlpDim, T, B>& intermediate() { return intermediate_; }
  linear<MlpDim, Dim, T, B>& output() { return output_; }
  // f(linear&) for each projection: query, key, value, attention output, intermediate, output.
  template <class F>
  void for_each_linear(F&& f) {
    f(attention_.query()), f(attention_.key()), f(attention_.value()), f(attention_.output());
    f(intermediate_), f(output_);
  }

  // x [N, L, D] -> y [N, L, D]
  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() == 3 && x.dim(2) == Dim, shape_error, "nn::transformer_block::forward",
                 "input: expected [N, L, ", Dim, "], got ", x.shape());
    // h [N, L, D] = x + attention(layernorm_before(x))
    const cview a = in_member("attention", [&] {
      return attention_.forward(in_member("layernorm_before", [&] { return norm_before_.forward(x); }));
    });
    h_.resize(x.shape());
    copy(be_, x, h_.view());
    axpy(be_, T(1), a, h_.view());
    // y [N, L, D] = h + output.dense(gelu(intermediate.dense(layernorm_after(h))))
    const cview m = in_member("output.dense", [&] {
      return output_.forward(gelu_.forward(in_member("intermediate.dense", [&] {
        return intermediate_.forward(in_member("layernorm_after", [&] { return norm_after_.forward(h_.cview()); }));
      })));
    });
    y_.resize(x.shape());
    copy(be_, h_.cview(), y_.view());
    axpy(be_, T(1), m, y_.view());
    return y_.cview();
  }

  // dy [N, L, D] -> dx [N, L, D]; parameter gradients added into the store.
  cview backward(cview dy) {
    expect_forward_ran(y_.rank() == 3, "nn::transformer_block::backward");
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, "nn::transformer_block::backward", "dy: expected ",
                 y_.shape(), ", got ", dy.shape());
    // dh = dy (the residual) + layernorm_after'(intermediate'(gelu'(output'(dy))))
    const cview dmlp = in_member("layernorm_after", [&] {
      return norm_after_.backward(in_member("intermediate.dense", [&] {
        return intermediate_.backward(gelu_.backward(in_member("output.dense", [&] { return output_.backward(dy); })));
      }));
    });
    dh_.resize(dy.shape());
    copy(be_, dy, dh_.view());
    axpy(be_, T(1), dmlp, dh_.view());
    // dx = dh (the residual) + layernorm_before'(attention'(dh))
    const cview datt = in_member("layernorm_before", [&] {
      return norm_before_.backward(in_member("attention", [&] { return attention_.backward(dh_.cview()); }));
    });
    dx_.resize(dy.shape());
    copy(be_, dh_.cview(), dx_.view());
    axpy(be_, T(1), datt, dx_.view());
    return dx_.cview();
  }

 private:
  B be_;
  layer_norm<Dim, T, B> norm_before_;
  multi_head_attention<Dim, Heads, T, B> attention_;
  layer_norm<Dim, T, B> norm_after_;
  linear<Dim, MlpDim, T, B> intermediate_;
  gelu<T, B> gelu_;
  linear<MlpDim, Dim, T, B> output_;
  tensor<T, B> h_, y_, dh_, dx_;
};

static_assert(layer<transformer_block<4, 2, 8>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
