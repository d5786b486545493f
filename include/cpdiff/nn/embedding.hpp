#pragma once
// embedding<Num, Dim, T, B>: PyTorch's nn.Embedding(Num, Dim): a lookup of rows of a table.
//   idx [...] (std::int64_t or std::int32_t)   weight [Num, Dim]   y [..., Dim]
// Unlike the other layers it does NOT fit the cview -> cview contract (core/concepts.hpp):
// forward takes a view of integer indices, and backward(dy) returns nothing (indices have no
// gradient); it only adds dy into the weight gradient, repeated indices adding up.
// An index outside [0, Num) is a shape_error naming the index, its position and Num.
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <std::size_t Num, std::size_t Dim, class T = float, class B = cpu>
class embedding {
  static_assert(Num > 0 && Dim > 0, "cpdiff::nn::embedding: Num and Dim must be positive");

 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  template <class I>
  using index_view = tensor_view<const I, memory_space_t<B>>;
  static constexpr std::size_t num_embeddings = Num, embedding_dim = Dim;

  // PyTorch's init: weight ~ N(0, 1).
  embedding(parameter_store<T, B>& ps, const std::string& name, rng& g, bool trainable = true)
      : ps_(&ps), be_(ps.backend()) {
    w_ = ps.add(name + ".weight", {Num, Dim}, trainable);
    fill_normal(be_, ps.value(w_), T(0), T(1), g.seed, g.take_stream());
  }

  view weight() { return ps_->value(w_); }
  param_id weight_id() const { return w_; }

  // idx [...] -> y [..., Dim]. Caches the index view: idx must stay alive until backward.
  template <ops::embedding_index I>
  cview forward(index_view<I> idx) {
    constexpr const char* where = "nn::embedding::forward";
    CPDIFF_CHECK(idx.rank() >= 1 && idx.rank() < shape::max_rank, shape_error, where,
                 "indices: expected rank 1 to ", shape::max_rank - 1, ", got shape ", idx.shape());
    expect_nonempty(idx, where, "indices");
    if (const auto bad = find_index_out_of_range(be_, idx.data(), idx.size(), Num))
      throw_error<shape_error>(where, "index ", bad->value, " at position ", bad->position, " of indices ",
                               idx.shape(), " is out of range for an embedding of Num = ", Num, " rows");
    idx_ = idx;
    y_.resize(append_dim(idx.shape()));
    // y[n, Dim] = weight[idx[n], :]
    embedding_gather(be_, idx.data(), idx.size(), ps_->value(w_).data(), Dim, y_.data());
    return y_.cview();
  }

  // dweight[idx[n], :] += dy[n, :]   (nothing when the weight is frozen)
  void backward(cview dy) {
    expect_forward_ran(y_.rank() > 0, "nn::embedding::backward");
    expect_shape(dy, y_.shape(), "nn::embedding::backward", "dy (the shape of the last forward output)");
    if (!ps_->entry(w_).trainable) return;
    std::visit(
        [&](auto idx) {
          if (idx.data()) embedding_scatter_add(be_, idx.data(), idx.size(), dy.data(), Dim, ps_->grad(w_).data());
        },
        idx_);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(ps_->entry(w_), ps_->value(w_), ps_->grad(w_));
  }

 private:
  static shape append_dim(const shape& s) {
    std::size_t d[shape::max_rank];
    for (std::size_t i = 0; i < s.rank(); ++i) d[i] = s[i];
    d[s.rank()] = Dim;
    return shape::from_range(d, d + s.rank() + 1);
  }

  parameter_store<T, B>* ps_;
  B be_;
  param_id w_;
  std::variant<index_view<std::int64_t>, index_view<std::int32_t>> idx_;
  tensor<T, B> y_;
};

}  // namespace cpdiff::nn
