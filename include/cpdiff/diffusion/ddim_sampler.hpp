#pragma once
// ddim_sampler<T, B, Index>: DDIM (Song et al. 2021) on an S-step sub-sequence tau_0 < ... < tau_{S-1}
// of [0, T). From x at tau_i to tau_{i-1} (acp_prev = 1 after tau_0):
//   x0     = (x - sqrt(1 - acp) eps) / sqrt(acp)                   (optionally clipped)
//   sigma  = eta sqrt((1 - acp_prev) / (1 - acp)) sqrt(1 - acp / acp_prev)
//   x_prev = sqrt(acp_prev) x0 + sqrt(1 - acp_prev - sigma^2) eps + sigma z
// eta = 0 is deterministic (the probability-flow ODE path): the output depends on the seed only through
// x_T. eta = 1 on the full sequence is DDPM with the posterior ("fixed small") variance.
// The denoiser contract, classifier-free guidance and the rng use are those of ddpm_sampler.hpp.
//
//   ddim_sampler<float> sampler(noise_schedule(1000), {.steps = 60});
//   auto z0 = sampler.sample(model, {n, 4, 117}, g);
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cpdiff/diffusion/ddpm_sampler.hpp"

namespace cpdiff::diffusion {

// How the S steps are spread over [0, T):
//   leading:  tau_i = i * floor(T / S)                 (DDIM's "uniform" skip; diffusers' "leading")
//   trailing: tau_i = floor((i + 1) T / S) - 1         (ends at T - 1, so sampling starts from pure noise)
//   linspace: tau_i = round(i (T - 1) / (S - 1))       (both ends 0 and T - 1)
enum class ddim_spacing { leading, trailing, linspace };

struct ddim_sampler_options {
  std::size_t steps = 50;  // S, 1 <= S <= T
  double eta = 0.0;        // 0 deterministic; 1 DDPM-like noise
  ddim_spacing spacing = ddim_spacing::leading;
  bool clip_x0 = true;   // clip the predicted x0 to [-x0_clip, x0_clip] (eps re-derived from it)
  double x0_clip = 1.0;
  bool clamp_x = false;  // clamp each x_prev to [-x_clip, x_clip]
  double x_clip = 1.0;
  // An explicit sub-sequence instead (strictly increasing, each < T); then steps and spacing are ignored.
  std::vector<std::size_t> timesteps = {};
};

// The increasing sub-sequence of S timesteps in [0, T). 1 <= S <= T, else config_error.
inline std::vector<std::size_t> ddim_timesteps(std::size_t T, std::size_t S, ddim_spacing spacing) {
  CPDIFF_CHECK(S >= 1 && S <= T, config_error, "diffusion::ddim_timesteps", "steps must be in [1, T = ", T, "], got ",
               S);
  std::vector<std::size_t> tau(S);
  for (std::size_t i = 0; i < S; ++i) {
    switch (spacing) {
      case ddim_spacing::leading: tau[i] = i * (T / S); break;
      case ddim_spacing::trailing: tau[i] = (i + 1) * T / S - 1; break;
      case ddim_spacing::linspace: tau[i] = S == 1 ? T - 1 : (2 * i * (T - 1) + (S - 1)) / (2 * (S - 1)); break;
    }
  }
  return tau;
}

template <class T = float, class B = cpu, class Index = std::int64_t>
class ddim_sampler {
 public:
  using value_type = T;
  using backend_type = B;
  using index_type = Index;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  explicit ddim_sampler(noise_schedule s, ddim_sampler_options o = {}, B be = {})
      : sched_(std::move(s)),
        tau_(o.timesteps.empty() ? ddim_timesteps(sched_.num_timesteps(), o.steps, o.spacing) : o.timesteps),
        opt_(std::move(o)),
        be_(be) {
    const char* where = "diffusion::ddim_sampler";
    for (std::size_t i = 0; i < tau_.size(); ++i)
      CPDIFF_CHECK(tau_[i] < sched_.num_timesteps() && (i == 0 || tau_[i] > tau_[i - 1]), config_error, where,
                   "timesteps must increase strictly within [0, ", sched_.num_timesteps(), "): tau[", i,
                   "] = ", tau_[i]);
    CPDIFF_CHECK(std::isfinite(opt_.eta) && opt_.eta >= 0, config_error, where, "eta must be >= 0, got ", opt_.eta);
    detail::check_clip(opt_.clip_x0, opt_.x0_clip, where, "x0_clip");
    detail::check_clip(opt_.clamp_x, opt_.x_clip, where, "x_clip");
    opt_.steps = tau_.size();
    opt_.timesteps = tau_;
  }

  // x_T ~ N(0, I) of shape s [N, ...] from g, then S steps. Returns x_0, valid until the next call.
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  cview sample(Model&& eps_model, const shape& s, rng& g) {
    detail::check_sample_shape(s, "diffusion::ddim_sampler::sample");
    x_.resize(s);
    fill_normal(be_, x_.view(), T(0), T(1), g.seed, g.take_stream());
    return run(eps_model, g);
  }
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  cview sample_from(Model&& eps_model, cview x_T, rng& g) {
    detail::check_sample_shape(x_T.shape(), "diffusion::ddim_sampler::sample_from");
    x_.resize(x_T.shape());
    copy(be_, x_T, x_.view());
    return run(eps_model, g);
  }

  // Step i in place: x holds x at tau_i on entry and x at tau_{i-1} (x_0 for i = 0) on return.
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  void step(Model&& eps_model, view x, std::size_t i, rng& g) {
    const char* where = "diffusion::ddim_sampler::step";
    detail::check_sample_shape(x.shape(), where);
    CPDIFF_CHECK(i < tau_.size(), shape_error, where, "step ", i, " out of range [0, ", tau_.size(), ")");
    t_.resize({x.dim(0)});
    fill(be_, t_.view(), static_cast<Index>(tau_[i]));
    const cview eps = eps_model(cview(x), t_.cview());
    expect_shape(eps, x.shape(), where, "eps_model output");
    ddim_step(be_, x, eps, coefs(i), g.seed, g.take_stream());
  }

  ops::ddim_step_coefs<T> coefs(std::size_t i) const {
    const std::size_t t = tau_[i];
    const double a = sched_.alphas_cumprod()[t];
    const double ap = i == 0 ? 1.0 : sched_.alphas_cumprod()[tau_[i - 1]];
    const double sigma = opt_.eta * std::sqrt((1 - ap) / (1 - a)) * std::sqrt(1 - a / ap);
    return {static_cast<T>(sched_.sqrt_recip_alphas_cumprod()[t]),
            static_cast<T>(sched_.sqrt_recipm1_alphas_cumprod()[t]),
            static_cast<T>(sched_.sqrt_alphas_cumprod()[t]),
            static_cast<T>(sched_.sqrt_one_minus_alphas_cumprod()[t]),
            static_cast<T>(std::sqrt(ap)),
            static_cast<T>(std::sqrt(std::max(0.0, 1 - ap - sigma * sigma))),
            static_cast<T>(sigma),
            detail::clip_bound<T>(opt_.clip_x0, opt_.x0_clip),
            detail::clip_bound<T>(opt_.clamp_x, opt_.x_clip)};
  }

  std::span<const std::size_t> timesteps() const { return tau_; }
  const noise_schedule& schedule() const { return sched_; }
  const ddim_sampler_options& options() const { return opt_; }

 private:
  template <class Model>
  cview run(Model& eps_model, rng& g) {
    for (std::size_t i = tau_.size(); i-- > 0;) step(eps_model, x_.view(), i, g);
    return x_.cview();
  }

  noise_schedule sched_;
  std::vector<std::size_t> tau_;  // [S] increasing
  ddim_sampler_options opt_;
  B be_;
  tensor<T, B> x_;      // [N, ...]
  tensor<Index, B> t_;  // [N]
};

}  // namespace cpdiff::diffusion
