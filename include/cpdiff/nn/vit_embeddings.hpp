#pragma once
// vit_embeddings<Channels, Image, Patch, Dim>: a Vision Transformer's input, laid out and named as Hugging Face's
// ViTEmbeddings: patch embedding, class token and learned position embeddings.
//   <name>.patch_embeddings.projection   Conv2d(Channels -> Dim, kernel Patch, stride Patch)   weight [D, C, p, p]
//   <name>.cls_token                     [1, 1, D]
//   <name>.position_embeddings           [1, P + 1, D]        P = (Image / Patch)^2
//
//   x [N, C, H, W] -> t = projection(x)                  [N, D, g, g]   g = Image / Patch
//                  -> t^T                                 [N, P, D]      patch p = row-major (i, j)
//                  -> y = [cls; t^T] + position           [N, P + 1, D]  token 0 is the class token
// Initial values: the projection as PyTorch's Conv2d, cls_token and position_embeddings ~ N(0, 0.02^2) (ViT's
// initializer_range; HF truncates at 2 sigma, which these draws are not). No dropout.
#include <cstddef>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/conv2d.hpp"
#include "cpdiff/nn/layer.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <std::size_t Channels, std::size_t Image, std::size_t Patch, std::size_t Dim, class T = float, class B = cpu>
class vit_embeddings {
  static_assert(Patch > 0 && Image % Patch == 0,
                "cpdiff::nn::vit_embeddings: the image side must be a multiple of the patch side");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t grid = Image / Patch, patches = grid * grid, tokens = patches + 1, dim = Dim;

  vit_embeddings(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : ps_(&ps), be_(ps.backend()), projection_(ps, name + ".patch_embeddings.projection", g, trainable) {
    cls_ = ps.add(name + ".cls_token", {1, 1, Dim}, trainable);
    pos_ = ps.add(name + ".position_embeddings", {1, tokens, Dim}, trainable);
    fill_normal(be_, ps.value(cls_), T(0), T(0.02), g.seed, g.take_stream());
    fill_normal(be_, ps.value(pos_), T(0), T(0.02), g.seed, g.take_stream());
  }

  conv2d<Channels, Dim, Patch, T, B, Patch>& projection() { return projection_; }
  view cls_token() { return ps_->value(cls_); }
  view position_embeddings() { return ps_->value(pos_); }
  param_id cls_token_id() const { return cls_; }
  param_id position_embeddings_id() const { return pos_; }

  // x [N, C, H, W] -> y [N, P + 1, D]
  cview forward(cview x) {
    constexpr const char* where = "nn::vit_embeddings::forward";
    CPDIFF_CHECK(x.rank() == 4 && x.dim(1) == Channels && x.dim(2) == Image && x.dim(3) == Image, shape_error, where,
                 "images: expected [N, ", Channels, ", ", Image, ", ", Image, "], got ", x.shape());
    expect_nonempty(x, where, "images");
    n_ = x.dim(0);
    const cview t = in_member("patch_embeddings.projection", [&] { return projection_.forward(x); });  // [N, D, g, g]
    // tokens [N, P, D] = t^T per sample, written after each sample's class-token row of y
    tokens_.resize({n_, patches, Dim});
    transpose_batched(be_, n_, Dim, patches, t.data(), tokens_.data());
    y_.resize({n_, tokens, Dim});
    copy_rows(be_, tokens_.cview().data(), patches * Dim, y_.data() + Dim, tokens * Dim, n_, patches * Dim);
    zero_class_rows();
    // y[n] += start [P+1, D] = position + [cls; 0]: the class token and every position in one broadcast
    start_.resize({tokens * Dim});
    copy(be_, cview(ps_->value(pos_)).reshape({tokens * Dim}), start_.view());
    axpy(be_, T(1), cview(ps_->value(cls_)).reshape({Dim}), view(start_.data(), {Dim}));
    add_row_vector(be_, y_.view().reshape({n_, tokens * Dim}), start_.cview());
    return y_.cview();
  }

  // dy [N, P + 1, D] -> dx [N, C, H, W]; gradients of the projection, cls_token and position_embeddings added.
  cview backward(cview dy) {
    constexpr const char* where = "nn::vit_embeddings::backward";
    expect_forward_ran(n_ > 0, where);
    CPDIFF_CHECK(dy.shape() == y_.shape(), shape_error, where, "dy: expected ", y_.shape(), ", got ", dy.shape());
    // d position [P+1, D] += sum_n dy[n] ; d cls [D] += sum_n dy[n, 0, :]
    sums_.resize({tokens * Dim});
    fill(be_, sums_.view(), T(0));
    add_column_sums(be_, dy.reshape({n_, tokens * Dim}), sums_.view());
    if (ps_->entries()[pos_.index].trainable) axpy(be_, T(1), sums_.cview(), ps_->grad(pos_).reshape({tokens * Dim}));
    if (ps_->entries()[cls_.index].trainable) axpy(be_, T(1), cview(sums_.cview().data(), {Dim}), ps_->grad(cls_).reshape({Dim}));
    // d tokens [N, P, D] = dy[:, 1:, :] ; d t [N, D, P] = its transpose
    tokens_.resize({n_, patches, Dim});
    copy_rows(be_, dy.data() + Dim, tokens * Dim, tokens_.data(), patches * Dim, n_, patches * Dim);
    dt_.resize({n_, Dim, grid, grid});
    transpose_batched(be_, n_, patches, Dim, tokens_.cview().data(), dt_.data());
    return in_member("patch_embeddings.projection", [&] { return projection_.backward(dt_.cview()); });
  }

 private:
  // y[n, 0, :] = 0 for every n (the class-token rows, before the broadcast add).
  void zero_class_rows() {
    zeros_.resize({Dim});
    fill(be_, zeros_.view(), T(0));
    copy_rows(be_, zeros_.cview().data(), 0, y_.data(), tokens * Dim, n_, Dim);
  }

  parameter_store<T, B>* ps_;
  B be_;
  conv2d<Channels, Dim, Patch, T, B, Patch> projection_;
  param_id cls_{}, pos_{};
  tensor<T, B> tokens_, y_, start_, zeros_, sums_, dt_;
  std::size_t n_ = 0;
};

static_assert(layer<vit_embeddings<1, 4, 2, 4>>, "the layer contract (nn/layer.hpp)");

}  // namespace cpdiff::nn
