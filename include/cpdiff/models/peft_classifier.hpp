#pragma once
// peft_classifier<Base>: a classifier with PEFT's LoRA injected into the Linears that `target_modules` names (PEFT's
// PeftModel over a classification base), with the interface train::pretrain_base / train::finetune_lora use
// (train::lora_classifier), so that any base with for_each_linear fine-tunes, collects and loads adapters:
//   models::peft_classifier<models::vit<models::vit_fashion_small>> m(seed, {.rank = 16, .alpha = 32});
//   train::pretrain_base(m, clean_train, clean_test, {.epochs = 8});   // the base, LoRA off
//   train::finetune_lora(m, task_train, {}, cfg);                        // lora_A / lora_B only
//   lora::save_peft("out/task0", m.adapter(), "cpdiff/vit-fashion");
// Modes (flipping the store's trainable flags):
//   lora_mode::pretrain  every base parameter trainable, lora_A / lora_B frozen (with B = 0 the LoRA adds 0)
//   lora_mode::finetune  lora_A / lora_B trainable, everything else frozen, as get_peft_model leaves a model
// Inputs are flat rows x [N, Base::inputs] (Fashion-MNIST's pixels); forward hands Base x reshaped to
// Base::input_shape(N) ([N, C, H, W] for a ViT). LoRA dropout (PEFT's lora_dropout) acts in training mode only.
//
// Base needs: Base(seed, backend), parameters(), for_each_linear(f), forward / backward, inputs, classes,
// input_shape(n) (models::vit has them).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/io/lora_adapter.hpp"
#include "cpdiff/models/classifier_accuracy.hpp"
#include "cpdiff/models/lora_mode.hpp"
#include "cpdiff/nn/lora_attach.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

// PEFT's LoraConfig fields that shape the adapter.
struct peft_lora_config {
  std::vector<std::string> target_modules{"query", "value"};
  std::size_t rank = 4;      // r
  double alpha = 16;         // lora_alpha
  bool use_rslora = false;   // scaling alpha / sqrt(r) instead of alpha / r
  double dropout = 0.0;      // lora_dropout
};

template <class Base>
class peft_classifier {
 public:
  using base_type = Base;
  using value_type = typename Base::value_type;
  using backend_type = typename Base::backend_type;
  using T = value_type;
  using B = backend_type;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t inputs = Base::inputs, classes = Base::classes;

  // The base from `seed`, LoRA attached to the targets (A from `seed`, B = 0); finetune mode.
  explicit peft_classifier(std::uint64_t seed, peft_lora_config c = {}, B be = {})
      : base_(std::make_unique<Base>(seed, be)), be_(be), g_(std::make_unique<rng>(rng{seed, 0})), config_(c) {
    rng init{seed ^ 0x6c6f7261ULL, 0};
    lora::attach(*base_, c.target_modules, c.rank, c.alpha, init, c.use_rslora);
    base_->for_each_linear([&](auto& lin) {
      if (lin.lora_rank() == 0) return;
      lora_ids_.push_back(lin.lora_a_id());
      lora_ids_.push_back(lin.lora_b_id());
      lora_parameters_ += lin.lora_rank() * (lin.in() + lin.out());
    });
    set_lora_dropout(c.dropout);
    set_mode(lora_mode::finetune);
  }

  Base& base() { return *base_; }
  parameter_store<T, B>& parameters() { return base_->parameters(); }
  const peft_lora_config& lora_config() const { return config_; }
  std::size_t lora_parameters() const { return lora_parameters_; }  // n of the flat adapter
  lora_mode mode() const { return mode_; }

  void set_mode(lora_mode m) {
    mode_ = m;
    auto& ps = parameters();
    for (std::size_t i = 0; i < ps.count(); ++i) ps.set_trainable(param_id{i}, (m == lora_mode::pretrain) != is_lora(i));
  }
  void set_lora_dropout(double p) {
    base_->for_each_linear([&](auto& lin) {
      if (lin.lora_rank() > 0) lin.set_lora_dropout(p, *g_);
    });
  }
  // Restarts the dropout masks' Philox streams under `seed`.
  void reseed_dropout(std::uint64_t seed) { *g_ = rng{seed, 0}; }
  void set_training(bool on) {
    training_ = on;
    base_->for_each_linear([&](auto& lin) { lin.set_training(on); });
  }

  // A fresh LoRA as PEFT initialises one: A ~ U(-1/sqrt(in), 1/sqrt(in)) from Philox (seed, stream k) for the
  // k-th adapted Linear, B = 0; the model computes the base function again.
  void reset_lora(std::uint64_t seed) {
    std::uint64_t k = 0;
    auto& ps = parameters();
    base_->for_each_linear([&](auto& lin) {
      if (lin.lora_rank() == 0) return;
      const T bound = T(1) / std::sqrt(T(lin.in()));
      fill_uniform(be_, ps.value(lin.lora_a_id()), -bound, bound, seed, k++);
      fill(be_, ps.value(lin.lora_b_id()), T(0));
    });
  }

  // x [N, inputs] -> logits [N, classes]
  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() == 2 && x.dim(1) == inputs && x.dim(0) > 0, shape_error, "models::peft_classifier::forward",
                 "input: expected [N, ", inputs, "] with N > 0, got shape ", x.shape());
    n_ = x.dim(0);
    return base_->forward(x.reshape(Base::input_shape(n_)));
  }
  // d logits [N, classes] -> dx [N, inputs]; the trainable parameters' gradients added into the store.
  cview backward(cview dlogits) {
    const cview dx = base_->backward(dlogits);
    return dx.reshape({n_, inputs});
  }

  // The LoRA as an adapter keyed by module path ("vit.encoder.layer.0.attention.attention.query").
  lora::adapter adapter() const { return lora::attached_adapter(*base_); }
  void load_adapter(const lora::adapter& a) { lora::load_attached(*base_, a); }

  // Copies every base parameter (not lora_A / lora_B) of a model with the same base, by name.
  void copy_base_from(peft_classifier& other) {
    auto& to = parameters();
    auto& from = other.parameters();
    for (std::size_t i = 0; i < to.count(); ++i) {
      if (is_lora(i)) continue;
      const auto& e = to.entry(param_id{i});
      const param_id j = from.find(e.name);
      CPDIFF_CHECK(from.entry(j).shape == e.shape, shape_error, "models::peft_classifier::copy_base_from", "'",
                   e.name, "' has shape ", from.entry(j).shape, " in the source, ", e.shape, " here");
      copy(be_, cview(from.value(j)), to.value(param_id{i}));
    }
  }

  // Fraction of images [n, inputs] whose largest logit is at their label, in batches, dropout off.
  double accuracy(std::span<const float> images, std::span<const std::int64_t> labels, std::size_t batch = 500) {
    const bool was = training_;
    set_training(false);
    const double acc = classifier_accuracy(be_, xin_, images, labels, inputs, classes, batch,
                                           "models::peft_classifier::accuracy", [&](cview x) { return forward(x); });
    set_training(was);
    return acc;
  }

 private:
  bool is_lora(std::size_t i) const {
    for (const param_id id : lora_ids_)
      if (id.index == i) return true;
    return false;
  }

  std::unique_ptr<Base> base_;  // the Linears keep pointers into the store and to *g_: both on the heap
  B be_;
  std::unique_ptr<rng> g_;      // LoRA dropout streams
  peft_lora_config config_;
  std::vector<param_id> lora_ids_;
  std::size_t lora_parameters_ = 0, n_ = 0;
  lora_mode mode_ = lora_mode::finetune;
  bool training_ = true;
  tensor<T, B> xin_;
};

}  // namespace cpdiff::models
