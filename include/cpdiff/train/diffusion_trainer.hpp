#pragma once
// diffusion_trainer<Denoiser, CondEncoder>: trains a conditional denoiser (models::pdiff_unet or any
// model with the same interface) with the DDPM epsilon objective on autoencoder latents.
//
//   // latents [M, C, L] from ae.encode, one condition per sample
//   train::diffusion_trainer trainer(unet, diffusion::noise_schedule(1000), latents,
//                                    train::condition_set<float>::per_sample(features), {.steps = 50000});
//   trainer.run();
//   trainer.ema()->swap_in();  ... sample ...  trainer.ema()->swap_out();
//
// A step: a batch of latents z0 [N, C, L] and their condition rows [N, D_in];
//   c = enc.forward(rows)                     [N, D]
//   x_t, t = objective.prepare(z0, g)         t ~ U{0..T-1}, x_t = sqrt(acp_t) z0 + sqrt(1 - acp_t) eps
//   eps_hat = net.forward(x_t, t, c)          [N, C, L]
//   loss, d eps_hat = objective.loss_and_grad(eps_hat)
//   d c = net.backward(d eps_hat);  enc.backward(d c)
// then training_loop's guards, clipping, AdamW (the encoder's own AdamW when it has parameters()) and
// the EMA of the denoiser (p-diff's decay 0.9999 unless options say otherwise; the encoder has none).
// With options().comm, each rank of a data-parallel job takes its rows of each batch (training_loop).
// A jointly trained encoder's parameters and optimiser state go into checkpoints as "cond_encoder/...".
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/diffusion/noise_schedule.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/train/batching.hpp"
#include "cpdiff/train/conditioning.hpp"
#include "cpdiff/train/training_loop.hpp"

namespace cpdiff::train {

inline constexpr double pdiff_ema_decay = 0.9999;

namespace detail {
template <class D>
struct denoiser_index {
  using type = std::int64_t;
};
template <class D>
  requires requires { typename D::tview; }
struct denoiser_index<D> {
  using type = std::remove_const_t<typename D::tview::value_type>;
};
}  // namespace detail

// What the trainer needs from a denoiser.
template <class D, class Index = typename detail::denoiser_index<D>::type>
concept trainable_denoiser =
    requires(D& d, tensor_view<const typename D::value_type, memory_space_t<typename D::backend_type>> x,
             tensor_view<const Index, memory_space_t<typename D::backend_type>> t) {
      { d.forward(x, t, x) } -> std::convertible_to<decltype(x)>;
      { d.backward(x) } -> std::convertible_to<decltype(x)>;
      { d.parameters() } -> std::same_as<parameter_store<typename D::value_type, typename D::backend_type>&>;
    };

template <trainable_denoiser Denoiser,
          class CondEncoder = identity_condition<typename Denoiser::value_type, typename Denoiser::backend_type>>
  requires condition_encoder<CondEncoder, typename Denoiser::value_type, typename Denoiser::backend_type>
class diffusion_trainer {
 public:
  using value_type = typename Denoiser::value_type;
  using backend_type = typename Denoiser::backend_type;
  using T = value_type;
  using B = backend_type;
  using index_type = typename detail::denoiser_index<Denoiser>::type;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr bool joint_encoder = trainable_condition_encoder<CondEncoder, T, B>;
  static constexpr const char* where = "train::diffusion_trainer";

  // latents [M, C, L] (any [M, ...]), copied; conditions: one per latent.
  diffusion_trainer(Denoiser& net, diffusion::noise_schedule schedule, tensor_view<const T, host_space> latents,
                    condition_set<T> conditions, const train_options& o = {})
    requires std::default_initializable<CondEncoder>
      : diffusion_trainer(net, std::make_unique<CondEncoder>(), nullptr, std::move(schedule), latents,
                          std::move(conditions), o) {}
  // With a condition encoder the caller owns (jointly trained when it has parameters()).
  diffusion_trainer(Denoiser& net, CondEncoder& encoder, diffusion::noise_schedule schedule,
                    tensor_view<const T, host_space> latents, condition_set<T> conditions, const train_options& o = {})
      : diffusion_trainer(net, nullptr, &encoder, std::move(schedule), latents, std::move(conditions), o) {}

  // n more steps; returns their mean loss. Throws numeric_error naming the step on a NaN / Inf loss or
  // gradient (the parameters are then those after the last good step).
  double run(std::size_t n) {
    loop_.progress().resume();
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += step();
    return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  }
  double run() { return run(loop_.total_steps() > loop_.step() ? loop_.total_steps() - loop_.step() : 0); }

  void save_checkpoint(const std::filesystem::path& path) { loop_.save(path); }
  void resume(const std::filesystem::path& path) { loop_.resume(path); }

  std::size_t step_count() const { return loop_.step(); }
  std::size_t total_steps() const { return loop_.total_steps(); }
  const loss_history& history() const { return loop_.history(); }
  const train_options& options() const { return loop_.options(); }
  optim::adamw<T, B>& optimizer() { return loop_.optimizer(); }
  optim::adamw<T, B>* encoder_optimizer() { return loop_.extra_optimizer(); }  // nullptr unless joint
  optim::ema<T, B>* ema() { return loop_.ema(); }                              // nullptr without EMA
  const shuffled_batches& batches() const { return loop_.batches(); }
  double current_lr() const { return loop_.current_lr(); }
  const std::optional<optim::reduce_lr_on_plateau>& plateau() const { return loop_.plateau(); }
  diffusion::ddpm_objective<T, B, index_type>& objective() { return obj_; }
  Denoiser& model() { return *net_; }
  CondEncoder& encoder() { return *enc_; }

 private:
  diffusion_trainer(Denoiser& net, std::unique_ptr<CondEncoder> owned, CondEncoder* enc,
                    diffusion::noise_schedule schedule, tensor_view<const T, host_space> latents,
                    condition_set<T> conditions, const train_options& o)
      : net_(&net), owned_(std::move(owned)), enc_(enc ? enc : owned_.get()),
        sample_shape_(checked_sample_shape(net, latents, conditions)),
        latents_(latents.data(), latents.data() + latents.size()), conds_(std::move(conditions)),
        obj_(std::move(schedule), net.parameters().backend()),
        loop_(where, "diffusion", net.parameters(), encoder_store(*enc_), "cond_encoder", o, latents.dim(0),
              pdiff_ema_decay) {
    if (loop_.parallel()) {
      const std::span<const T> table = conds_.table();
      loop_.set_data_fingerprint(fingerprint(table.data(), table.size_bytes(),
                                             fingerprint(latents_.data(), latents_.size() * sizeof(T))));
    }
  }

  // The jointly trained encoder's store; none for an encoder whose trainable() says false at run time.
  static parameter_store<T, B>* encoder_store(CondEncoder& e) {
    if constexpr (joint_encoder) {
      if constexpr (requires { { e.trainable() } -> std::convertible_to<bool>; })
        if (!e.trainable()) return nullptr;
      return &e.parameters();
    } else {
      return nullptr;
    }
  }

  static shape checked_sample_shape(Denoiser& net, tensor_view<const T, host_space> z, const condition_set<T>& c) {
    CPDIFF_CHECK(z.rank() >= 2, shape_error, where, "latents: expected [M, C, L], got shape ", z.shape());
    expect_nonempty(z, where, "latents [M, C, L]");
    if constexpr (requires { net.latent_shape(); })
      CPDIFF_CHECK(z.shape().tail(1) == net.latent_shape(), shape_error, where, "latents: expected [M, ",
                   net.latent_shape()[0], ", ", net.latent_shape().rank() > 1 ? net.latent_shape()[1] : 1,
                   "] for this denoiser, got ", z.shape());
    CPDIFF_CHECK(c.size() == z.dim(0), shape_error, where, "conditions: ", c.size(), " for ", z.dim(0),
                 " latents ", z.shape(), " (one condition per latent)");
    return z.shape().tail(1);
  }

  double step() {
    const matmul_precision_scope precision(loop_.step_precision());
    const std::span<const std::size_t> idx = loop_.next_batch();
    const std::size_t n = idx.size();
    const B& be = net_->parameters().backend();
    // z0 [N, C, L]
    z0_.resize(prepend(n, sample_shape_));
    gather_rows(be, std::span<const T>(latents_), sample_shape_.size(), idx, z0_, staging_);
    // condition rows [N, D_in]
    rows_idx_.resize(n);
    for (std::size_t i = 0; i < n; ++i) rows_idx_[i] = conds_.row_of(idx[i]);
    rows_.resize({n, conds_.dim()});
    gather_rows(be, conds_.table(), conds_.dim(), std::span<const std::size_t>(rows_idx_), rows_, staging_);

    loop_.zero_grad();
    const cview c = enc_->forward(rows_.cview());                           // [N, D]
    const auto prep = obj_.prepare(z0_.cview(), loop_.noise());             // x_t [N, C, L], t [N]
    const cview eps_hat = net_->forward(prep.x_t, prep.t, c);              // [N, C, L]
    const auto lg = obj_.loss_and_grad(eps_hat);                           // mean (eps_hat - eps)^2
    const double loss = loop_.global_loss(lg.loss);                         // over all ranks' rows
    loop_.check_loss(loss);
    const cview dc = net_->backward(lg.d_eps_hat);  // d c [N, D]
    enc_->backward(dc);
    loop_.finish_step(loss);
    return loss;
  }

  static shape prepend(std::size_t n, const shape& s) {
    std::vector<std::size_t> d{n};
    d.insert(d.end(), s.begin(), s.end());
    return shape::from_range(d.begin(), d.end());
  }

  Denoiser* net_;
  std::unique_ptr<CondEncoder> owned_;
  CondEncoder* enc_;
  shape sample_shape_;      // [C, L]
  std::vector<T> latents_;  // [M, C, L] host copy
  condition_set<T> conds_;
  diffusion::ddpm_objective<T, B, index_type> obj_;
  training_loop<T, B> loop_;
  tensor<T, B> z0_, rows_;  // [N, C, L], [N, D_in]
  std::vector<std::size_t> rows_idx_;
  std::vector<T> staging_;
};

}  // namespace cpdiff::train
