#pragma once
// ddpm_sampler<T, B, Index>: DDPM ancestral sampling (Ho et al. 2020, Alg. 2) as p-diff does it:
// "fixed large" reverse variance, x0 predicted from eps and clipped to [-1, 1], x_{t-1} clamped to
// [-1, 1] after every step (the latents are Tanh-bounded). All clips are options.
//
// The denoiser is any callable  eps_model(x_t, t) -> const view of eps_hat  (same shape as x_t):
//   x_t  tensor_view<const T, Space>      [N, ...]  current sample
//   t    tensor_view<const Index, Space>  [N]       the timestep, equal for every sample
// so any U-Net, conditioning included, plugs in through a lambda that captures the condition:
//
//   auto model = [&](auto x, auto t) { return unet.forward(x, t, cond); };
//   ddpm_sampler<float> sampler(noise_schedule(1000));
//   auto z0 = sampler.sample(model, {n, 4, 117}, g);
//
// Classifier-free guidance lives in the model wrapper, not in the sampler: a wrapper runs the
// denoiser with and without the condition and combines the two with ops::cfg_combine,
//   eps = eps_uncond + w * (eps_cond - eps_uncond),
// writing into a buffer it owns and returning a view of it. The samplers see one eps_model either way.
//
// Randomness: sample() takes one rng stream for x_T and one per step (the step noise is Philox by
// element index), so the output is a pure function of the seed, the model and the options.
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/diffusion/noise_schedule.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::diffusion {

// The samplers' denoiser contract (see above).
template <class M, class T, class B, class Index>
concept eps_predictor = requires(M& m, tensor_view<const T, memory_space_t<B>> x,
                                 tensor_view<const Index, memory_space_t<B>> t) {
  { m(x, t) } -> std::convertible_to<tensor_view<const T, memory_space_t<B>>>;
};

// Reverse-process variance: fixed_large = beta_t (first step: posterior variance[1]), as p-diff and DDPM's
// best samples; fixed_small = the posterior variance.
enum class reverse_variance { fixed_large, fixed_small };

struct ddpm_sampler_options {
  reverse_variance variance = reverse_variance::fixed_large;
  bool clip_x0 = true;  // clip the predicted x0 to [-x0_clip, x0_clip]
  double x0_clip = 1.0;
  bool clamp_x = true;  // clamp x_{t-1} to [-x_clip, x_clip] after every step
  double x_clip = 1.0;
};

namespace detail {
inline void check_clip(bool on, double bound, const char* where, const char* what) {
  CPDIFF_CHECK(!on || bound > 0, config_error, where, what, " must be positive (or switch the clip off), got ", bound);
}
template <class T>
T clip_bound(bool on, double bound) {
  return on ? static_cast<T>(bound) : std::numeric_limits<T>::infinity();
}
// Shape of a sample batch: [N, ...] with N > 0 and nothing empty.
inline void check_sample_shape(const shape& s, const char* where) {
  CPDIFF_CHECK(s.rank() >= 1 && s.size() > 0, shape_error, where,
               "sample shape: expected [N, ...] with N > 0 and no empty dimension, got ", s);
}
}  // namespace detail

template <class T = float, class B = cpu, class Index = std::int64_t>
class ddpm_sampler {
 public:
  using value_type = T;
  using backend_type = B;
  using index_type = Index;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  explicit ddpm_sampler(noise_schedule s, ddpm_sampler_options o = {}, B be = {})
      : sched_(std::move(s)), opt_(o), be_(be) {
    detail::check_clip(o.clip_x0, o.x0_clip, "diffusion::ddpm_sampler", "x0_clip");
    detail::check_clip(o.clamp_x, o.x_clip, "diffusion::ddpm_sampler", "x_clip");
  }

  // x_T ~ N(0, I) of shape s [N, ...] from g, then T reverse steps. Returns x_0, valid until the next call.
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  cview sample(Model&& eps_model, const shape& s, rng& g) {
    detail::check_sample_shape(s, "diffusion::ddpm_sampler::sample");
    x_.resize(s);
    fill_normal(be_, x_.view(), T(0), T(1), g.seed, g.take_stream());
    return run(eps_model, g);
  }
  // The same from a given x_T [N, ...] (copied; x_T is left as it is).
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  cview sample_from(Model&& eps_model, cview x_T, rng& g) {
    detail::check_sample_shape(x_T.shape(), "diffusion::ddpm_sampler::sample_from");
    x_.resize(x_T.shape());
    copy(be_, x_T, x_.view());
    return run(eps_model, g);
  }

  // One reverse step in place: x holds x_t on entry and x_{t-1} on return (takes one stream from g).
  template <class Model>
    requires eps_predictor<Model, T, B, Index>
  void step(Model&& eps_model, view x, std::size_t t, rng& g) {
    const char* where = "diffusion::ddpm_sampler::step";
    detail::check_sample_shape(x.shape(), where);
    CPDIFF_CHECK(t < sched_.num_timesteps(), shape_error, where, "timestep ", t, " out of range [0, ",
                 sched_.num_timesteps(), ")");
    t_.resize({x.dim(0)});
    fill(be_, t_.view(), static_cast<Index>(t));
    const cview eps = eps_model(cview(x), t_.cview());
    expect_shape(eps, x.shape(), where, "eps_model output");
    ddpm_step(be_, x, eps, coefs(t), g.seed, g.take_stream());
  }

  // The step's coefficients at timestep t (T-typed, as the kernel gets them).
  ops::ddpm_step_coefs<T> coefs(std::size_t t) const {
    const double log_var = opt_.variance == reverse_variance::fixed_large ? sched_.log_variance_fixed_large()[t]
                                                                          : sched_.posterior_log_variance_clipped()[t];
    return {static_cast<T>(sched_.sqrt_recip_alphas_cumprod()[t]),
            static_cast<T>(sched_.sqrt_recipm1_alphas_cumprod()[t]),
            static_cast<T>(sched_.posterior_mean_coef1()[t]),
            static_cast<T>(sched_.posterior_mean_coef2()[t]),
            t == 0 ? T(0) : static_cast<T>(std::exp(0.5 * log_var)),  // no noise on the last step
            detail::clip_bound<T>(opt_.clip_x0, opt_.x0_clip),
            detail::clip_bound<T>(opt_.clamp_x, opt_.x_clip)};
  }

  const noise_schedule& schedule() const { return sched_; }
  const ddpm_sampler_options& options() const { return opt_; }

 private:
  template <class Model>
  cview run(Model& eps_model, rng& g) {
    for (std::size_t t = sched_.num_timesteps(); t-- > 0;) step(eps_model, x_.view(), t, g);
    return x_.cview();
  }

  noise_schedule sched_;
  ddpm_sampler_options opt_;
  B be_;
  tensor<T, B> x_;      // [N, ...] the sample, updated in place
  tensor<Index, B> t_;  // [N] the current timestep, broadcast
};

}  // namespace cpdiff::diffusion
