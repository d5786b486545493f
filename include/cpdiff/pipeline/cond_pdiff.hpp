#pragma once
// cond_pdiff: stages 4-6 of Cond P-Diff (SPEC.md) around a parameter autoencoder, a conditional denoiser
// and a condition encoder chosen by the caller:
//
//   cond_pdiff sys(ae, unet, encoder, schedule);
//   sys.train_autoencoder(vectors [M, n], ae_options);          // normalised LoRA vectors, no conditions
//   sys.train_diffusion(condition rows [M, D_in], dm_options);  // on the clean latents E(x)
//   auto v = sys.generate(condition row [D_in], count, rng);    // normalised vectors [count, n]
//
// Normalisation (z-score) and unflattening stay with the caller (data::lora_collection), since which
// statistics to de-normalise with depends on the experiment (per condition, or shared for conditions
// never seen in training).
//
// Latent scale: the samplers clip x0 and x_t to [-1, 1] (SPEC.md, for Tanh-bounded latents). A latent that is
// a Linear output (models::style_autoencoder) is not bounded, so the diffusion runs on s * E(x) with
// s = 1 / max|E(x)| over the training latents when that maximum exceeds 1, and generate() decodes z / s.
// With p-diff's Tanh latents s = 1 and nothing changes. latent_scale() says which s was used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cpdiff/diffusion/ddim_sampler.hpp"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/diffusion/ddpm_sampler.hpp"
#include "cpdiff/diffusion/noise_schedule.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"

namespace cpdiff::pipeline {

// Where a stage keeps its trainer checkpoint: written at the end of the stage (before the EMA weights are
// swapped in) and every options.checkpoint_every steps; with resume, a stage whose file exists continues from it
// (a finished stage runs no further step and yields the same weights and latents).
struct stage_checkpoint {
  std::filesystem::path path;  // empty: none
  bool resume = false;
};

struct sampler_options {
  std::size_t ddim_steps = 0;  // 0: DDPM ancestral over all T steps (the paper's); > 0: DDIM with this many
  double ddim_eta = 0.0;
};

// Timesteps at which to report a denoiser's loss (cond_pdiff::loss_by_timestep) for a schedule of T steps:
// 0, T/100, T/20, T/10, T/4, T/2, 3T/4, T-1 (0, 10, 50, 100, 250, 500, 750, 999 for T = 1000).
inline std::vector<std::size_t> loss_profile_timesteps(std::size_t T) {
  CPDIFF_CHECK(T > 0, config_error, "pipeline::loss_profile_timesteps", "the schedule has no timesteps");
  return {0, T / 100, T / 20, T / 10, T / 4, T / 2, 3 * T / 4, T - 1};
}
// "t=0 0.55, t=10 0.049, ..." for logs and reports.
inline std::string format_loss_by_timestep(std::span<const std::size_t> timesteps, std::span<const double> loss) {
  CPDIFF_CHECK(timesteps.size() == loss.size(), shape_error, "pipeline::format_loss_by_timestep", timesteps.size(),
               " timesteps but ", loss.size(), " losses");
  std::ostringstream o;
  for (std::size_t i = 0; i < timesteps.size(); ++i)
    o << (i ? ", " : "") << "t=" << timesteps[i] << " " << loss[i];
  return o.str();
}

template <class AE, class Denoiser, class CondEncoder>
class cond_pdiff {
 public:
  using T = typename AE::value_type;
  using B = typename AE::backend_type;
  using hview = tensor_view<const T, host_space>;

  cond_pdiff(AE& ae, Denoiser& net, CondEncoder& enc, diffusion::noise_schedule schedule)
      : ae_(ae), net_(net), enc_(enc), schedule_(std::move(schedule)) {}

  // Stage 4: the parameter autoencoder on normalised vectors [M, n]. Returns the final reconstruction MSE.
  double train_autoencoder(hview vectors, const train::train_options& o, const stage_checkpoint& ck = {}) {
    ae_trainer_ = std::make_unique<train::autoencoder_trainer<AE>>(ae_, vectors, o);
    if (ck.resume && std::filesystem::exists(ck.path)) ae_trainer_->resume(ck.path);
    ae_trainer_->run();
    if (!ck.path.empty()) ae_trainer_->save_checkpoint(ck.path);
    if (auto* e = ae_trainer_->ema()) e->swap_in();  // evaluate and encode with the averaged weights
    if constexpr (requires { ae_.set_training(false); }) ae_.set_training(false);
    const double mse = ae_trainer_->evaluate();
    latents_ = encode(vectors);
    T peak = 0;
    for (std::size_t i = 0; i < latents_.size(); ++i) peak = std::max(peak, std::abs(latents_.data()[i]));
    latent_scale_ = peak > T(1) ? T(1) / peak : T(1);
    latent_sample_ = latents_.shape().tail(1);
    if (latent_scale_ != T(1))
      for (std::size_t i = 0; i < latents_.size(); ++i) latents_.data()[i] *= latent_scale_;
    return mse;
  }

  // Clean latents E(x) [M, C, L] of vectors [M, n] (host), in batches.
  tensor<T, cpu> encode(hview vectors, std::size_t batch = 256) {
    const std::size_t m = vectors.dim(0), n = vectors.dim(1);
    tensor<T, cpu> out;
    for (std::size_t b = 0; b < m; b += batch) {
      const std::size_t k = std::min(batch, m - b);
      tensor<T, B> x({k, n});
      from_host(be(), std::span<const T>(vectors.data() + b * n, k * n), x.view());
      auto z = ae_.encode(x.cview());
      if (b == 0) {
        shape s = z.shape();
        s[0] = m;
        out.resize(s);
      }
      const auto h = to_host(be(), z);
      std::copy(h.begin(), h.end(), out.data() + b * (z.size() / k));
    }
    return out;
  }

  // Stage 5: the conditional latent diffusion on the latents of the vectors given to train_autoencoder,
  // one condition row per vector [M, D_in]. Returns the mean loss of the last 10% of steps.
  double train_diffusion(hview condition_rows, const train::train_options& o, const stage_checkpoint& ck = {}) {
    CPDIFF_CHECK(latents_.rank() > 0, config_error, "pipeline::cond_pdiff::train_diffusion",
                 "train the autoencoder first (no latents yet)");
    dm_trainer_ = std::make_unique<train::diffusion_trainer<Denoiser, CondEncoder>>(
        net_, enc_, schedule_, latents_.cview(), train::condition_set<T>::per_sample(condition_rows), o);
    if (ck.resume && std::filesystem::exists(ck.path)) dm_trainer_->resume(ck.path);
    const std::size_t total = dm_trainer_->total_steps(), tail = std::max<std::size_t>(1, total / 10);
    const std::size_t done = dm_trainer_->step_count();
    if (done + tail < total) dm_trainer_->run(total - tail - done);
    const double last = dm_trainer_->run(total - std::max(done, total - tail));  // NaN when resumed finished
    if (!ck.path.empty()) dm_trainer_->save_checkpoint(ck.path);
    if (auto* e = dm_trainer_->ema()) e->swap_in();  // sample with the EMA of the denoiser (p-diff)
    return last;
  }

  // Stage 6: `count` normalised vectors [count, n] for one condition row [D_in].
  std::vector<T> generate(std::span<const T> condition_row, std::size_t count, rng& g, const sampler_options& s = {}) {
    const std::size_t d_in = condition_row.size();
    tensor<T, B> rows({count, d_in});
    std::vector<T> rep(count * d_in);
    for (std::size_t i = 0; i < count; ++i) std::copy(condition_row.begin(), condition_row.end(), rep.begin() + i * d_in);
    from_host(be(), std::span<const T>(rep), rows.view());
    auto features = enc_.forward(rows.cview());
    tensor<T, B> feat(features.shape());
    copy(be(), features, feat.view());
    auto eps_model = [&](tensor_view<const T, memory_space_t<B>> x, auto t) { return net_.forward(x, t, feat.cview()); };
    CPDIFF_CHECK(latent_sample_.rank() > 0, config_error, "pipeline::cond_pdiff::generate",
                 "no trained latent: train the autoencoder first, or restore() a trained system");
    std::vector<std::size_t> dims{count};
    dims.insert(dims.end(), latent_sample_.begin(), latent_sample_.end());
    const shape zs = shape::from_range(dims.begin(), dims.end());
    tensor_view<const T, memory_space_t<B>> z;
    if (s.ddim_steps == 0) {
      if (!ddpm_) ddpm_.emplace(schedule_, diffusion::ddpm_sampler_options{}, be());
      z = ddpm_->sample(eps_model, zs, g);
    } else {
      ddim_.emplace(schedule_, diffusion::ddim_sampler_options{.steps = s.ddim_steps, .eta = s.ddim_eta}, be());
      z = ddim_->sample(eps_model, zs, g);
    }
    last_latents_ = to_host(be(), z);
    if (latent_scale_ != T(1)) {
      unscaled_.resize(z.shape());
      copy(be(), z, unscaled_.view());
      scale(be(), unscaled_.view(), T(1) / latent_scale_);
      z = unscaled_.cview();
    }
    return to_host(be(), ae_.decode(z));
  }
  // The denoising loss mean((eps_hat - eps)^2) of the trained denoiser at each timestep of `timesteps`, over all
  // training latents with their condition rows [M, D_in] (those given to train_diffusion), one eps ~ N(0, I) per
  // latent and timestep from `seed`. Where a denoiser falls short shows by noise level: at small t eps_hat must
  // recover x_t - sqrt(acp) z0 to within sqrt(1 - acp), at large t it is nearly x_t itself.
  std::vector<double> loss_by_timestep(hview condition_rows, std::span<const std::size_t> timesteps,
                                       std::uint64_t seed, std::size_t batch = 256) {
    constexpr const char* where = "pipeline::cond_pdiff::loss_by_timestep";
    CPDIFF_CHECK(latents_.rank() > 0, config_error, where, "train the autoencoder first (no latents yet)");
    const std::size_t m = latents_.dim(0), per = latents_.size() / m;
    CPDIFF_CHECK(condition_rows.rank() == 2 && condition_rows.dim(0) == m && batch > 0, shape_error, where,
                 "condition rows: expected [", m, ", D_in] (one per training latent), got ", condition_rows.shape());
    const std::size_t d_in = condition_rows.dim(1);
    for (std::size_t t : timesteps)
      CPDIFF_CHECK(t < schedule_.num_timesteps(), shape_error, where, "timestep ", t, " out of range [0, ",
                   schedule_.num_timesteps(), ")");
    diffusion::ddpm_objective<T, B> obj(schedule_, be());
    std::vector<double> sum(timesteps.size(), 0.0);
    std::vector<std::int64_t> ts;
    for (std::size_t i = 0; i < m; i += batch) {  // each batch uploaded and encoded once, for every t
      const std::size_t nb = std::min(batch, m - i);
      shape zs = latents_.shape();
      zs[0] = nb;
      eval_z_.resize(zs);
      eval_rows_.resize({nb, d_in});
      from_host(be(), std::span<const T>(latents_.data() + i * per, nb * per), eval_z_.view());
      from_host(be(), std::span<const T>(condition_rows.data() + i * d_in, nb * d_in), eval_rows_.view());
      const auto features = enc_.forward(eval_rows_.cview());
      for (std::size_t k = 0; k < timesteps.size(); ++k) {
        ts.assign(nb, static_cast<std::int64_t>(timesteps[k]));
        rng g{seed, /*stream=*/timesteps[k], /*first_sample=*/i};  // latent j's eps: the same in any batching
        auto prep = obj.prepare(eval_z_.cview(), std::span<const std::int64_t>(ts), g);
        // loss_b = mean over the batch's elements of (eps_hat - eps)^2
        sum[k] += obj.loss_and_grad(net_.forward(prep.x_t, prep.t, features)).loss * static_cast<double>(nb);
      }
    }
    for (double& v : sum) v /= static_cast<double>(m);
    return sum;
  }

  // The one backend value of the system: the autoencoder's (its parameter store's), so every kernel the
  // pipeline queues runs on the models' stream.
  const B& be() const { return ae_.parameters().backend(); }

  // A system whose models were trained before (weights loaded): the shape of one sample's latent and the
  // latent scale s of its training (latent_scale()); then generate() needs no training call.
  void restore(shape latent_sample, T latent_scale) {
    CPDIFF_CHECK(latent_scale > T(0) && latent_scale <= T(1), config_error, "pipeline::cond_pdiff::restore",
                 "latent scale ", latent_scale, " is not in (0, 1]");
    latent_sample_ = latent_sample;
    latent_scale_ = latent_scale;
  }
  const shape& latent_sample_shape() const { return latent_sample_; }

  // The latents of the last generate() call (host, in the units of latents()), e.g. for a PCA beside them.
  const std::vector<T>& last_latents() const { return last_latents_; }

  // The training latents s * E(x) [M, ...] the diffusion model learns (host).
  const tensor<T, cpu>& latents() const { return latents_; }
  // s: 1, or 1 / max|E(x)| when the autoencoder's latents exceed the samplers' clip range [-1, 1].
  T latent_scale() const { return latent_scale_; }
  train::autoencoder_trainer<AE>* autoencoder_trainer() { return ae_trainer_.get(); }
  train::diffusion_trainer<Denoiser, CondEncoder>* diffusion_trainer() { return dm_trainer_.get(); }

 private:
  AE& ae_;
  Denoiser& net_;
  CondEncoder& enc_;
  diffusion::noise_schedule schedule_;
  std::unique_ptr<train::autoencoder_trainer<AE>> ae_trainer_;
  std::unique_ptr<train::diffusion_trainer<Denoiser, CondEncoder>> dm_trainer_;
  tensor<T, cpu> latents_;
  T latent_scale_ = 1;
  shape latent_sample_;  // [C, L] or [S]: one sample's latent
  tensor<T, B> unscaled_, eval_z_, eval_rows_;  // generate()'s z / s; loss_by_timestep's batch
  std::vector<T> last_latents_;
  std::optional<diffusion::ddpm_sampler<T, B>> ddpm_;
  std::optional<diffusion::ddim_sampler<T, B>> ddim_;
};

}  // namespace cpdiff::pipeline
