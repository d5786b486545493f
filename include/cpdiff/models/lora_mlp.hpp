#pragma once
// lora_mlp<Rank, Alpha, Hidden>: the base classifier of the LoRA experiments, a Fashion-MNIST MLP
//   x [N, 784] -> fc1 (784 -> Hidden) -> ReLU -> fc2 (Hidden -> 10) -> logits [N, 10]
// whose linear layers are nn::lora_linear<..., Rank, Alpha> (module paths "fc1", "fc2"), so that one class
// is first pre-trained and then frozen and LoRA-fine-tuned (paper's (Rank, Alpha): (1,8) (2,8) (4,16) (16,32)).
//
// Two modes, set by flipping the store's trainable flags (no copy, no second model):
//   pretrain:  base weights and biases trainable, lora_A / lora_B frozen. With B = 0 (PEFT's init, what
//              reset_lora() gives) the LoRA path adds exactly 0, so this trains a plain MLP.
//   finetune:  base frozen, lora_A / lora_B trainable (the default after construction).
// lora_linear needs Rank <= min(In, Out), so the head (Out = 10) can carry a LoRA only for Rank <= 10.
// AdaptHead (default: Rank <= 10) chooses: true -> fc2 is a lora_linear; false -> fc2 is a plain
// nn::linear that is trained in pretrain mode and frozen in finetune mode, and the adapter holds "fc1" only.
// The base of one model can be copied into another of a different rank (copy_base_from), so the four
// (Rank, Alpha) pairs share one pre-trained base.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/nn/lora_transfer.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/lora_linear.hpp"
#include "cpdiff/models/classifier_accuracy.hpp"
#include "cpdiff/models/lora_mode.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

template <std::size_t Rank, class Alpha, std::size_t Hidden = 128, class T = float, class B = cpu,
          bool AdaptHead = (Rank <= 10)>
class lora_mlp {
  static_assert(Hidden >= Rank, "cpdiff::models::lora_mlp: Hidden must be at least Rank (fc1's LoRA rank is "
                                "at most min(784, Hidden)); raise Hidden or lower Rank");
  static_assert(!AdaptHead || Rank <= 10, "cpdiff::models::lora_mlp: a LoRA on the 10-way head needs Rank <= 10; "
                                          "set AdaptHead = false to adapt fc1 only");

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using fc1_type = nn::lora_linear<784, Hidden, Rank, Alpha, T, B>;
  using fc2_type = std::conditional_t<AdaptHead, nn::lora_linear<Hidden, 10, Rank, Alpha, T, B>,
                                      nn::linear<Hidden, 10, T, B>>;
  static constexpr std::size_t inputs = 784, hidden = Hidden, classes = 10, rank = Rank;
  static constexpr bool adapts_head = AdaptHead;

  // Base weights and the first LoRA A from `seed` (PyTorch / PEFT init, B = 0); finetune mode.
  explicit lora_mlp(std::uint64_t seed, double lora_dropout = 0.0, B be = {})
      : ps_(std::make_unique<parameter_store<T, B>>(be)), be_(be), g_(std::make_unique<rng>(rng{seed, 0})),
        fc1_(*ps_, "fc1", *g_, lora_dropout), act_(*ps_),
        fc2_(*ps_, "fc2", *g_) {
    set_lora_dropout(lora_dropout);
    set_mode(mlp_mode::finetune);
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  const parameter_store<T, B>& parameters() const { return *ps_; }
  fc1_type& fc1() { return fc1_; }
  fc2_type& fc2() { return fc2_; }
  const fc1_type& fc1() const { return fc1_; }
  const fc2_type& fc2() const { return fc2_; }
  const B& backend() const { return be_; }
  mlp_mode mode() const { return mode_; }

  void set_mode(mlp_mode m) {
    mode_ = m;
    const bool base = m == mlp_mode::pretrain;
    ps_->set_trainable(fc1_.weight_id(), base);
    ps_->set_trainable(fc1_.bias_id(), base);
    ps_->set_trainable(fc2_.weight_id(), base);
    ps_->set_trainable(fc2_.bias_id(), base);
    ps_->set_trainable(fc1_.lora_A_id(), !base);
    ps_->set_trainable(fc1_.lora_B_id(), !base);
    if constexpr (AdaptHead) {
      ps_->set_trainable(fc2_.lora_A_id(), !base);
      ps_->set_trainable(fc2_.lora_B_id(), !base);
    }
  }
  // LoRA dropout probability (both adapted layers); acts only while training is on.
  void set_lora_dropout(double p) {
    fc1_.set_dropout(p);
    if constexpr (AdaptHead) fc2_.set_dropout(p);
  }
  // Restarts the dropout masks' Philox streams under `seed` (a run is then a function of its seeds).
  void reseed_dropout(std::uint64_t seed) { *g_ = rng{seed, 0}; }
  void set_training(bool on) {
    fc1_.set_training(on);
    if constexpr (AdaptHead) fc2_.set_training(on);
  }

  // A fresh LoRA as PEFT initialises one: A ~ U(-1/sqrt(in), 1/sqrt(in)) from Philox (seed, stream l),
  // B = 0. The base is untouched, so the model computes the base function again.
  void reset_lora(std::uint64_t seed) {
    reset_one(fc1_, seed, 0);
    if constexpr (AdaptHead) reset_one(fc2_, seed, 1);
  }

  // logits [N, 10] = fc2(relu(fc1(x [N, 784])))
  cview forward(cview x) {
    CPDIFF_CHECK(x.rank() == 2 && x.dim(1) == inputs && x.dim(0) > 0, shape_error, "models::lora_mlp::forward",
                 "input: expected [N, 784] with N > 0, got shape ", x.shape());
    cview h = nn::in_member("fc1", [&] { return fc1_.forward(x); });
    return nn::in_member("fc2", [&] { return fc2_.forward(act_.forward(h)); });
  }
  // dx [N, 784] from dlogits [N, 10]; adds the trainable parameters' gradients into the store.
  cview backward(cview dlogits) {
    CPDIFF_CHECK(dlogits.rank() == 2 && dlogits.dim(1) == classes, shape_error, "models::lora_mlp::backward",
                 "dlogits: expected [N, 10], got shape ", dlogits.shape());
    cview dh = nn::in_member("fc2", [&] { return fc2_.backward(dlogits); });
    return nn::in_member("fc1", [&] { return fc1_.backward(act_.backward(dh)); });
  }

  // The LoRA weights as an adapter with modules "fc1" (and "fc2" when the head is adapted).
  lora::adapter adapter() const {
    lora::adapter a;
    if constexpr (AdaptHead)
      lora::extract(a, fc1_, fc2_);
    else
      lora::extract(a, fc1_);
    return a;
  }
  // Loads an adapter holding exactly this model's modules (config_error for missing or extra modules,
  // shape_error for other ranks; see lora::load_into).
  void load_adapter(const lora::adapter& a) {
    const std::size_t want = AdaptHead ? 2 : 1;
    std::string have;
    for (const auto& [k, w] : a.modules) have += (have.empty() ? "'" : ", '") + k + "'";
    CPDIFF_CHECK(a.size() == want && a.contains("fc1") && (!AdaptHead || a.contains("fc2")), config_error,
                 "models::lora_mlp::load_adapter", "expected modules ", AdaptHead ? "'fc1' and 'fc2'" : "'fc1' only",
                 ", the adapter has ", have.empty() ? std::string("none") : have);
    lora::load_into(fc1_, a, "fc1");
    if constexpr (AdaptHead) lora::load_into(fc2_, a, "fc2");
  }

  // Base weights and biases, flat in the order fc1.weight, fc1.bias, fc2.weight, fc2.bias (host copy).
  std::vector<T> base_weights() const {
    std::vector<T> out;
    for (cview v : base_views()) {
      const std::vector<T> h = to_host(be_, v);
      out.insert(out.end(), h.begin(), h.end());
    }
    return out;
  }
  void load_base_weights(std::span<const T> w) {
    std::size_t need = 0;
    for (cview v : base_views()) need += v.size();
    CPDIFF_CHECK(w.size() == need, shape_error, "models::lora_mlp::load_base_weights", "expected ", need,
                 " values (Hidden = ", Hidden, "), got ", w.size());
    std::size_t at = 0;
    for (auto v : base_views_mut()) {
      from_host(be_, w.subspan(at, v.size()), v);
      at += v.size();
    }
  }
  // Copies the base of a model with the same Hidden (any rank, alpha, head choice).
  template <class Other>
  void copy_base_from(const Other& other) {
    static_assert(Other::hidden == Hidden, "cpdiff::models::lora_mlp::copy_base_from: Hidden sizes differ");
    load_base_weights(other.base_weights());
  }

  // Fraction of images whose largest logit is at their label. images [n, 784] (host floats in [0, 1]),
  // labels [n]; evaluated in batches with dropout off.
  double accuracy(std::span<const float> images, std::span<const std::int64_t> labels, std::size_t batch = 1000) {
    const bool was = fc1_.training();
    set_training(false);
    const double acc = classifier_accuracy(be_, xin_, images, labels, inputs, classes, batch, "models::lora_mlp::accuracy",
                                           [&](cview x) { return forward(x); });
    set_training(was);
    return acc;
  }

 private:
  template <class L>
  void reset_one(L& l, std::uint64_t seed, std::uint64_t stream) {
    const T bound = T(1) / std::sqrt(T(L::in_features));
    fill_uniform(be_, l.lora_A(), -bound, bound, seed, stream);
    fill(be_, l.lora_B(), T(0));
  }
  std::vector<cview> base_views() const {
    const auto& ps = *ps_;
    return {ps.value(fc1_.weight_id()), ps.value(fc1_.bias_id()), ps.value(fc2_.weight_id()),
            ps.value(fc2_.bias_id())};
  }
  std::vector<tensor_view<T, memory_space_t<B>>> base_views_mut() {
    return {ps_->value(fc1_.weight_id()), ps_->value(fc1_.bias_id()), ps_->value(fc2_.weight_id()),
            ps_->value(fc2_.bias_id())};
  }

  // The layers keep pointers to the store and to the rng of their dropout streams: both live on the heap,
  // so the model can be moved.
  std::unique_ptr<parameter_store<T, B>> ps_;
  B be_;
  std::unique_ptr<rng> g_;
  fc1_type fc1_;
  nn::relu<T, B> act_;
  fc2_type fc2_;
  mlp_mode mode_ = mlp_mode::finetune;
  tensor<T, B> xin_;  // [batch, 784] staging for accuracy()
};

}  // namespace cpdiff::models
