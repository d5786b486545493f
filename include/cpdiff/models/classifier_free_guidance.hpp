#pragma once
// Classifier-free guidance (Ho & Salimans 2022), optional and off by default.
//
// Training: cfg_dropout replaces each sample's condition feature by a "null" feature with probability p, so one
// denoiser learns eps(x, t, c) and eps(x, t, null). The null feature is learned ("<name>.null_feature" [D],
// starting at zero) or fixed zeros. Row r of a call is dropped iff philox_uniform(g.seed, s, r) < p, s one stream
// taken from the caller's rng per call in training mode: reproducible from the seed alone.
//
// cfg_encoder puts the dropout behind any condition encoder, for train::diffusion_trainer.
//
// Sampling: guided_eps wraps a conditional denoiser (bottom_unet, pdiff_unet: anything with
// forward(x, t, cond)) into the samplers' eps_model(x_t, t) (diffusion/ddpm_sampler.hpp):
//   eps = (1 + w) eps(x, t, c) - w eps(x, t, null)      (ops::cfg_combine with scale 1 + w)
// w = 0 is the conditional model (one pass), w = -1 the unconditional one, w > 0 guides toward c.
//
//   models::guided_eps eps_model(unet, cond, dropout.null_features(n), 2.0);
//   auto z0 = sampler.sample(eps_model, {n, 256}, g);
#include <cmath>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

enum class null_condition { learned, zero };

struct cfg_dropout_options {
  double probability = 0.0;  // p; 0 switches condition dropout off (the default)
  null_condition null = null_condition::learned;
};

template <class T = float, class B = cpu>
class cfg_dropout {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  // Registers "<name>.null_feature" [dim] (zeros) in ps when the null feature is learned: put it in the store of
  // the condition encoder or of the denoiser, whichever the optimiser steps.
  cfg_dropout(parameter_store<T, B>& ps, const std::string& name, std::size_t dim, cfg_dropout_options o = {})
      : ps_(&ps), be_(ps.backend()), dim_(dim), opt_(o) {
    CPDIFF_CHECK(dim > 0, config_error, "models::cfg_dropout", "dim must be positive");
    CPDIFF_CHECK(std::isfinite(o.probability) && o.probability >= 0 && o.probability <= 1, config_error,
                 "models::cfg_dropout", "probability must lie in [0, 1], got ", o.probability);
    if (o.null == null_condition::learned) null_ = ps.add(name + ".null_feature", {dim});
  }

  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  const cfg_dropout_options& options() const { return opt_; }
  std::size_t dim() const { return dim_; }
  // Which rows the last forward dropped (1) or kept (0).
  const std::vector<unsigned char>& dropped() const { return mask_; }

  // features [N, D] -> [N, D], rows replaced by the null feature with probability p (training mode only).
  cview forward(cview features, rng& g) {
    constexpr const char* where = "models::cfg_dropout::forward";
    expect_rank(features, 2, where, "features [N, D]");
    expect_dim(features, 1, dim_, where, "features [N, D]");
    expect_nonempty(features, where, "features [N, D]");
    const std::size_t n = features.dim(0);
    mask_.assign(n, 0);
    y_.resize(features.shape());
    copy(be_, features, y_.view());
    if (!training_) return y_.cview();
    const std::uint64_t stream = g.take_stream();
    const float p = static_cast<float>(opt_.probability);
    for (std::size_t r = 0; r < n; ++r) {
      if (!(philox_uniform(g.seed, stream, g.first_sample + r) < p)) continue;  // per global sample
      mask_[r] = 1;
      set_null_row(y_.view()[r]);
    }
    return y_.cview();
  }

  // d out [N, D] -> d features (zero on dropped rows); the dropped rows' d out is added into the null feature.
  cview backward(cview dy) {
    expect_shape(dy, y_.shape(), "models::cfg_dropout::backward", "dy (the shape of the last forward output)");
    dx_.resize(dy.shape());
    copy(be_, dy, dx_.view());
    const bool learn = opt_.null == null_condition::learned && ps_->entry(null_).trainable;
    for (std::size_t r = 0; r < mask_.size(); ++r) {
      if (!mask_[r]) continue;
      const cview row = dy[r];
      // d null += dy[r] ; d features[r] = 0
      if (learn) axpy(be_, T(1), row, ps_->grad(null_));
      fill(be_, dx_.view()[r], T(0));
    }
    return dx_.cview();
  }

  // [n, D]: the null feature in every row (the unconditional input for guided sampling).
  cview null_features(std::size_t n) {
    CPDIFF_CHECK(n > 0, shape_error, "models::cfg_dropout::null_features", "n must be positive");
    null_rows_.resize({n, dim_});
    for (std::size_t r = 0; r < n; ++r) set_null_row(null_rows_.view()[r]);
    return null_rows_.cview();
  }

 private:
  // dst [D]: the learned null feature, or zeros.
  void set_null_row(tensor_view<T, memory_space_t<B>> dst) {
    if (opt_.null == null_condition::learned)
      copy_rows(be_, ps_->value(null_).data(), dim_, dst.data(), dim_, 1, dim_);
    else
      fill(be_, dst, T(0));
  }

  parameter_store<T, B>* ps_;
  B be_;
  std::size_t dim_;
  cfg_dropout_options opt_;
  param_id null_;
  bool training_ = true;
  std::vector<unsigned char> mask_;
  tensor<T, B> y_, dx_, null_rows_;
};

// A condition encoder with condition dropout after it, in the encoder contract of train::diffusion_trainer
// (forward(rows) -> features, backward(d features), parameters()), so CFG training needs no trainer change:
//   forward(x) = dropout(encoder(x)) with its own rng (seed, stream counter), backward(d) = encoder^T dropout^T d.
// The learned null feature joins the encoder's store ("cfg.null_feature"); an encoder without parameters()
// (features computed beforehand) gets a store of its own for it. The encoder must outlive the wrapper.
template <class Encoder, class T = typename Encoder::value_type, class B = typename Encoder::backend_type>
class cfg_encoder {
  static constexpr bool has_store = requires(Encoder& e) {
    { e.parameters() } -> std::same_as<parameter_store<T, B>&>;
  };

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  // dim: the encoder's feature size D.
  cfg_encoder(Encoder& encoder, std::size_t dim, cfg_dropout_options o, std::uint64_t seed, B be = {})
      : enc_(&encoder), own_(has_store ? nullptr : std::make_unique<parameter_store<T, B>>(be)),
        drop_(store(), "cfg", dim, o), g_{seed, 0} {}

  parameter_store<T, B>& parameters() { return store(); }
  cfg_dropout<T, B>& dropout() { return drop_; }
  rng& noise() { return g_; }  // save / restore next_stream to resume exactly
  void set_training(bool on) {
    drop_.set_training(on);
    if constexpr (requires { enc_->set_training(on); }) enc_->set_training(on);
  }
  // [n, D] null features for guided sampling.
  cview null_features(std::size_t n) { return drop_.null_features(n); }

  cview forward(cview x) { return drop_.forward(enc_->forward(x), g_); }
  void backward(cview d) { enc_->backward(drop_.backward(d)); }

 private:
  parameter_store<T, B>& store() {
    if constexpr (has_store) return enc_->parameters();
    else return *own_;
  }

  Encoder* enc_;
  std::unique_ptr<parameter_store<T, B>> own_;
  cfg_dropout<T, B> drop_;
  rng g_;
};

// The guided denoiser, a callable eps_model(x_t, t) for the samplers. Model: forward(x, t, cond) -> eps view,
// with member types cview and tview (bottom_unet, pdiff_unet). cond [N, D]; null_cond [N, D] or [1, D] (one row
// for every sample). Both views must outlive this object.
template <class Model>
class guided_eps {
 public:
  using value_type = typename Model::value_type;
  using backend_type = typename Model::backend_type;
  using cview = typename Model::cview;
  using tview = typename Model::tview;

  guided_eps(Model& model, cview cond, cview null_cond, double w, backend_type be = {})
      : model_(&model), cond_(cond), null_(null_cond), w_(w), be_(be) {
    constexpr const char* where = "models::guided_eps";
    CPDIFF_CHECK(std::isfinite(w), config_error, where, "the guidance weight must be finite, got ", w);
    CPDIFF_CHECK(cond.rank() == 2 && cond.size() > 0, shape_error, where, "condition: expected [N, D], got ",
                 cond.shape());
    CPDIFF_CHECK(null_cond.rank() == 2 && null_cond.dim(1) == cond.dim(1) &&
                     (null_cond.dim(0) == 1 || null_cond.dim(0) == cond.dim(0)),
                 shape_error, where, "null condition: expected [1, ", cond.dim(1), "] or [", cond.dim(0), ", ",
                 cond.dim(1), "], got ", null_cond.shape());
  }

  double weight() const { return w_; }

  // x_t [N, ...], t [N] -> (1 + w) eps(x_t, t, c) - w eps(x_t, t, null)
  cview operator()(cview x, tview t) {
    if (w_ == 0) return model_->forward(x, t, cond_);
    cview ec = model_->forward(x, t, cond_);
    eps_c_.resize(ec.shape());
    copy(be_, ec, eps_c_.view());  // the model's buffer is overwritten by the next pass
    cview eu = model_->forward(x, t, null_for(cond_.dim(0)));
    out_.resize(ec.shape());
    cfg_combine(be_, eu, eps_c_.cview(), static_cast<value_type>(1 + w_), out_.view());
    return out_.cview();
  }

 private:
  cview null_for(std::size_t n) {
    if (null_.dim(0) == n) return null_;
    null_rows_.resize({n, null_.dim(1)});
    copy_rows(be_, null_.data(), 0, null_rows_.data(), null_.dim(1), n, null_.dim(1));
    return null_rows_.cview();
  }

  Model* model_;
  cview cond_, null_;
  double w_;
  backend_type be_;
  tensor<value_type, backend_type> eps_c_, out_, null_rows_;
};

}  // namespace cpdiff::models
