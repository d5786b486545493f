#pragma once
// Condition encoders: what turns a condition into the feature c [N, D] that a U-Net takes.
//   style_image_encoder  style images [N, k, H, W] -> conv, conv, pool, Linear   (style_image_encoder.hpp)
//   vector_projector     a fixed external embedding [N, E] (the code's 512-d CLIP text features) -> Linear
//                        or Linear -> SiLU -> Linear -> [N, D]
//   condition_table      those fixed embeddings, one row per condition id, loaded from an .npy [C, E]
//   condition_embedding  a learned row per condition id, [num_conditions, D]
// and classifier-free guidance (cfg_dropout, guided_eps: classifier_free_guidance.hpp).
// The trained ones own their parameter store (as the models do) and ADD gradients into it in backward.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/models/classifier_free_guidance.hpp"
#include "cpdiff/models/style_image_encoder.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/linear.hpp"

namespace cpdiff::models {

// e [N, E] -> Linear(E -> D) -> c [N, D]   ("proj.weight", "proj.bias"), or with hidden = H > 0
// e [N, E] -> Linear(E -> H) -> SiLU -> Linear(H -> D)   ("proj.0.*", "proj.2.*", as an nn.Sequential).
template <class T = float, class B = cpu>
class vector_projector {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  vector_projector(std::size_t in_dim, std::size_t out_dim, std::uint64_t seed, std::size_t hidden = 0, B be = {})
      : ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0} {
    CPDIFF_CHECK(in_dim > 0 && out_dim > 0, config_error, "models::vector_projector", "sizes ", in_dim, " -> ",
                 out_dim, " must be positive");
    if (hidden == 0) {
      fc1_.emplace(*ps_, "proj", g_, in_dim, out_dim);
    } else {
      fc1_.emplace(*ps_, "proj.0", g_, in_dim, hidden);
      fc2_.emplace(*ps_, "proj.2", g_, hidden, out_dim);
    }
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  std::size_t in_dim() const { return fc1_->in(); }
  std::size_t feature_dim() const { return fc2_ ? fc2_->out() : fc1_->out(); }

  // e [N, E] -> c [N, D]
  cview forward(cview e) {
    constexpr const char* where = "models::vector_projector::forward";
    expect_rank(e, 2, where, "embedding [N, E]");
    expect_dim(e, 1, in_dim(), where, "embedding [N, E]");
    expect_nonempty(e, where, "embedding [N, E]");
    cview h = fc1_->forward(e);
    return fc2_ ? fc2_->forward(act_.forward(h)) : h;
  }
  // d c [N, D] -> parameter gradients (added); returns d e [N, E].
  cview backward(cview dc) {
    constexpr const char* where = "models::vector_projector::backward";
    CPDIFF_CHECK(dc.rank() == 2 && dc.dim(1) == feature_dim(), shape_error, where, "d(feature): expected [N, ",
                 feature_dim(), "], got ", dc.shape());
    return fc1_->backward(fc2_ ? act_.backward(fc2_->backward(dc)) : dc);
  }

 private:
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  std::optional<nn::linear<dynamic, dynamic, T, B>> fc1_, fc2_;
  nn::silu<T, B> act_{*ps_};
};

// Fixed embeddings [C, E], one row per condition id (not trained): lookup(ids [N]) -> [N, E].
template <class T = float, class B = cpu, class Index = std::int64_t>
class condition_table {
 public:
  using cview = tensor_view<const T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  // values: C * E numbers, row-major, on the host.
  condition_table(std::size_t count, std::size_t dim, std::span<const T> values, B be = {})
      : be_(be), table_({count, dim}) {
    CPDIFF_CHECK(count > 0 && dim > 0 && values.size() == count * dim, shape_error, "models::condition_table",
                 "expected ", count, " x ", dim, " = ", count * dim, " values, got ", values.size());
    from_host(be_, values, table_.view());
  }
  // An .npy of shape [C, E] (any float or integer dtype; converted to T).
  static condition_table load(const std::filesystem::path& path, B be = {}) {
    const io::npy_array<T> a = io::load_npy<T>(path);
    CPDIFF_CHECK(a.shape.size() == 2 && a.shape[0] > 0 && a.shape[1] > 0, io_error, "models::condition_table::load",
                 path.string(), ": expected a 2-D array [conditions, dim], got ",
                 shape::from_range(a.shape.begin(), a.shape.end()));
    return condition_table(a.shape[0], a.shape[1], std::span<const T>(a.data), be);
  }

  std::size_t count() const { return table_.dim(0); }
  std::size_t dim() const { return table_.dim(1); }
  cview table() const { return table_.cview(); }

  // ids [N] -> rows [N, E]
  cview lookup(tview ids) {
    constexpr const char* where = "models::condition_table::lookup";
    CPDIFF_CHECK(ids.rank() == 1 && ids.size() > 0, shape_error, where, "ids: expected [N], got ", ids.shape());
    if (const auto bad = find_index_out_of_range(be_, ids.data(), ids.size(), count()))
      throw_error<shape_error>(where, "condition id ", bad->value, " at position ", bad->position,
                               " is outside [0, ", count(), ")");
    rows_.resize({ids.size(), dim()});
    embedding_gather(be_, ids.data(), ids.size(), table_.data(), dim(), rows_.data());
    return rows_.cview();
  }

 private:
  B be_;
  tensor<T, B> table_, rows_;
};

// A learned feature per condition id: table [num_conditions, D] ~ N(0, 1) ("embedding.weight"), a run-time
// sized nn::embedding. forward(ids [N]) -> [N, D]; backward(d [N, D]) adds into the rows used.
// (train::diffusion_trainer feeds its encoder feature rows, not ids: there, the same function is a
// vector_projector(K, D) on one-hot rows, train::condition_set::by_id(ids, identity table [K, K]).)
template <class T = float, class B = cpu, class Index = std::int64_t>
class condition_embedding {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  condition_embedding(std::size_t num_conditions, std::size_t dim, std::uint64_t seed, B be = {})
      : be_(be), ps_(std::make_unique<parameter_store<T, B>>(be)), num_(num_conditions), dim_(dim) {
    CPDIFF_CHECK(num_conditions > 0 && dim > 0, config_error, "models::condition_embedding", "sizes ",
                 num_conditions, " x ", dim, " must be positive");
    w_ = ps_->add("embedding.weight", {num_, dim_});
    fill_normal(be_, ps_->value(w_), T(0), T(1), seed, 0);
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  std::size_t num_conditions() const { return num_; }
  std::size_t feature_dim() const { return dim_; }

  // ids [N] -> table[ids] [N, D]
  cview forward(tview ids) {
    constexpr const char* where = "models::condition_embedding::forward";
    CPDIFF_CHECK(ids.rank() == 1 && ids.size() > 0, shape_error, where, "ids: expected [N], got ", ids.shape());
    if (const auto bad = find_index_out_of_range(be_, ids.data(), ids.size(), num_))
      throw_error<shape_error>(where, "condition id ", bad->value, " at position ", bad->position, " is outside [0, ",
                               num_, ")");
    ids_ = ids;
    y_.resize({ids.size(), dim_});
    embedding_gather(be_, ids.data(), ids.size(), ps_->value(w_).data(), dim_, y_.data());
    return y_.cview();
  }
  // table[ids_n] += d[n]
  void backward(cview d) {
    expect_shape(d, y_.shape(), "models::condition_embedding::backward", "d(feature)");
    if (ps_->entry(w_).trainable)
      embedding_scatter_add(be_, ids_.data(), ids_.size(), d.data(), dim_, ps_->grad(w_).data());
  }

 private:
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  std::size_t num_, dim_;
  param_id w_;
  tview ids_;
  tensor<T, B> y_;
};

}  // namespace cpdiff::models
