#pragma once
// ddpm_objective<T, B, Index>: the DDPM training loss with epsilon prediction (Ho et al. 2020, Alg. 1),
// independent of the denoiser. One training step:
//
//   auto [x_t, t] = obj.prepare(z0, g);          // t ~ U{0..T-1}, eps ~ N(0, I), x_t = q_sample(z0, t, eps)
//   auto eps_hat  = unet.forward(x_t, t, cond);  // the caller's denoiser
//   auto [loss, d_eps_hat] = obj.loss_and_grad(eps_hat);   // MSE(eps_hat, eps) and its gradient
//   unet.backward(d_eps_hat);
//
// The object owns the x_t / eps / t buffers (resized, never reallocated once warm). Randomness comes
// from the counter-based rng: prepare takes two streams from it (timesteps, then noise), so a run is
// reproducible from the seed. The loss is returned, not checked: the trainer's NaN guard names the step.
// Timesteps go to the denoiser as a backend view of Index [N] (int64 by default, as PyTorch's embedding
// takes); a host copy is kept for the coefficients.
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/diffusion/noise_schedule.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::diffusion {

template <class Index>
constexpr bool timestep_in_range(Index t, std::size_t T) {
  if constexpr (std::is_signed_v<Index>)
    if (t < 0) return false;
  return static_cast<std::size_t>(t) < T;
}

// t_n = floor(u32_k * T / 2^32), k = first + n, from Philox stream `stream`: uniform on {0..T-1} (bias below
// T / 2^32). `first`: the index of t's first sample in the global batch (rng::first_sample).
template <class Index>
void draw_timesteps(std::span<Index> t, std::size_t T, std::uint64_t seed, std::uint64_t stream,
                    std::uint64_t first = 0) {
  for (std::size_t n = 0; n < t.size(); ++n) {
    const std::uint64_t k = first + n;
    const std::uint32_t u = philox4x32(seed, k >> 2, stream).v[k & 3];
    t[n] = static_cast<Index>((static_cast<std::uint64_t>(u) * T) >> 32);
  }
}

template <class T = float, class B = cpu, class Index = std::int64_t>
class ddpm_objective {
 public:
  using value_type = T;
  using backend_type = B;
  using index_type = Index;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  struct prepared {
    cview x_t;  // [N, ...] noised input for the denoiser
    tview t;    // [N] timesteps
  };
  struct loss_grad {
    double loss;      // mean((eps_hat - eps)^2)
    cview d_eps_hat;  // [N, ...] = 2 (eps_hat - eps) / numel
  };

  explicit ddpm_objective(noise_schedule s, B be = {}) : sched_(std::move(s)), be_(be) {}

  // x0 [N, ...] clean latents (N > 0). Draws t (stream 1) and eps (stream 2) from g.
  prepared prepare(cview x0, rng& g) {
    check_x0(x0, "diffusion::ddpm_objective::prepare");
    t_host_.resize(x0.dim(0));
    draw_timesteps<Index>(t_host_, sched_.num_timesteps(), g.seed, g.take_stream(), g.first_sample);
    return noise(x0, g);
  }
  // As above with given timesteps t [N] (each in [0, T)); draws only eps from g.
  prepared prepare(cview x0, std::span<const Index> t, rng& g) {
    const char* where = "diffusion::ddpm_objective::prepare";
    check_x0(x0, where);
    CPDIFF_CHECK(t.size() == x0.dim(0), shape_error, where, "timesteps: expected ", x0.dim(0), " (one per sample of x0 ",
                 x0.shape(), "), got ", t.size());
    for (std::size_t n = 0; n < t.size(); ++n)
      CPDIFF_CHECK(timestep_in_range(t[n], sched_.num_timesteps()), shape_error, where,
                   "timestep t[", n, "] = ", t[n], " out of range [0, ", sched_.num_timesteps(), ")");
    t_host_.assign(t.begin(), t.end());
    return noise(x0, g);
  }

  // eps_hat: the denoiser's prediction for the last prepare(), same shape as x_t.
  loss_grad loss_and_grad(cview eps_hat) {
    const char* where = "diffusion::ddpm_objective::loss_and_grad";
    CPDIFF_CHECK(eps_.rank() > 0, shape_error, where, "call prepare() first");
    expect_shape(eps_hat, eps_.shape(), where, "eps_hat");
    d_eps_hat_.resize(eps_.shape());
    // loss = mean((eps_hat - eps)^2); d eps_hat = 2 (eps_hat - eps) / numel
    const double loss = ddpm_mse_and_grad(be_, eps_hat, eps_.cview(), d_eps_hat_.view());
    return {loss, d_eps_hat_.cview()};
  }

  const noise_schedule& schedule() const { return sched_; }
  cview x_t() const { return x_t_.cview(); }
  cview eps() const { return eps_.cview(); }
  tview timesteps() const { return t_.cview(); }
  std::span<const Index> timesteps_host() const { return t_host_; }

 private:
  void check_x0(cview x0, const char* where) const {
    CPDIFF_CHECK(x0.rank() >= 1 && x0.dim(0) > 0 && x0.size() > 0, shape_error, where,
                 "x0: expected [N, ...] with N > 0 and no empty dimension, got shape ", x0.shape());
  }

  // eps ~ N(0, I); a[n] = sqrt(acp[t_n]), b[n] = sqrt(1 - acp[t_n]); x_t = a x0 + b eps.
  prepared noise(cview x0, rng& g) {
    const std::size_t N = x0.dim(0);
    eps_.resize(x0.shape());
    x_t_.resize(x0.shape());
    fill_normal(be_, eps_.view(), T(0), T(1), g.seed, g.take_stream(), g.sample_offset(x0.size() / N));
    a_host_.resize(N);
    b_host_.resize(N);
    for (std::size_t n = 0; n < N; ++n) {
      a_host_[n] = static_cast<T>(sched_.sqrt_alphas_cumprod()[static_cast<std::size_t>(t_host_[n])]);
      b_host_[n] = static_cast<T>(sched_.sqrt_one_minus_alphas_cumprod()[static_cast<std::size_t>(t_host_[n])]);
    }
    a_.resize({N});
    b_.resize({N});
    t_.resize({N});
    from_host(be_, std::span<const T>(a_host_), a_.view());
    from_host(be_, std::span<const T>(b_host_), b_.view());
    from_host(be_, std::span<const Index>(t_host_), t_.view());
    // x_t[N, ...] = a[N] * x0 + b[N] * eps
    q_sample(be_, x0, eps_.cview(), a_.cview(), b_.cview(), x_t_.view());
    return {x_t_.cview(), t_.cview()};
  }

  noise_schedule sched_;
  B be_;
  std::vector<Index> t_host_;
  std::vector<T> a_host_, b_host_;
  tensor<T, B> eps_, x_t_, d_eps_hat_, a_, b_;  // eps, x_t, d_eps_hat [N, ...]; a, b [N]
  tensor<Index, B> t_;                           // [N]
};

}  // namespace cpdiff::diffusion
