#pragma once
// CPU kernels of the diffusion objective and samplers (diffusion/ddpm_objective.hpp, ddpm_sampler.hpp,
// ddim_sampler.hpp). The step coefficients are computed in double on the host by the callers and passed
// as plain structs of T, so a GPU port takes the same structs by value. Gaussian noise inside a step is
// drawn from Philox by element index: the same numbers on any backend and thread count, and no buffer.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::ops {

namespace detail {
template <class T>
inline T diffusion_clamp(T v, T c) {
  return std::min(std::max(v, -c), c);
}
}  // namespace detail

// Forward noising with per-sample coefficients:
//   x_t[n, :] = a[n] * x0[n, :] + b[n] * eps[n, :]      x0, eps, x_t [N, ...]   a, b [N]
// (a = sqrt(acp[t_n]), b = sqrt(1 - acp[t_n]) for the DDPM objective).
template <class T>
void q_sample(cpu, hcview<T> x0, hcview<T> eps, hcview<T> a, hcview<T> b, hview<T> xt) {
  CPDIFF_ASSERT(x0.size() == eps.size() && x0.size() == xt.size() && a.size() == b.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(a.size());
  const std::size_t d = n > 0 ? x0.size() / static_cast<std::size_t>(n) : 0;
  const T *xp = x0.data(), *ep = eps.data(), *ap = a.data(), *bp = b.data();
  T* yp = xt.data();
#pragma omp parallel for num_threads(team_for(x0.size())) if (team_for(x0.size()) > 1)
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const T ar = ap[r], br = bp[r];
    const std::size_t o = static_cast<std::size_t>(r) * d;
#pragma omp simd
    for (std::size_t j = 0; j < d; ++j) yp[o + j] = ar * xp[o + j] + br * ep[o + j];
  }
}

// loss = mean((pred - target)^2) over all elements; dpred = 2 (pred - target) / numel. Returns loss (double).
template <class T>
double ddpm_mse_and_grad(cpu, hcview<T> pred, hcview<T> target, hview<T> dpred) {
  CPDIFF_ASSERT(pred.size() == target.size() && pred.size() == dpred.size() && pred.size() > 0);
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(pred.size());
  const T *pp = pred.data(), *tp = target.data();
  T* dp = dpred.data();
  const T g = T(2) / static_cast<T>(n);
  double s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T r = pp[i] - tp[i];
    s += static_cast<double>(r) * static_cast<double>(r);
    dp[i] = g * r;
  }
  return s / static_cast<double>(n);
}

// x <- x_{t-1}, in place (x holds x_t on entry):
//   x0 = clip(x0_from_x x - x0_from_eps eps); mean = mean_from_x0 x0 + mean_from_x x;
//   x  = clamp(mean + sigma z),  z_i = philox_normal(seed, stream, i)
template <class T>
void ddpm_step(cpu, hview<T> x, hcview<T> eps, const ddpm_step_coefs<T>& c, std::uint64_t seed,
               std::uint64_t stream) {
  CPDIFF_ASSERT(x.size() == eps.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
  T* xp = x.data();
  const T* ep = eps.data();
  const bool noise = c.sigma != T(0);
#pragma omp parallel for num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T xt = xp[i];
    const T x0 = detail::diffusion_clamp(c.x0_from_x * xt - c.x0_from_eps * ep[i], c.x0_clip);
    T v = c.mean_from_x0 * x0 + c.mean_from_x * xt;
    if (noise) v += c.sigma * static_cast<T>(philox_normal(seed, stream, static_cast<std::uint64_t>(i)));
    xp[i] = detail::diffusion_clamp(v, c.x_clip);
  }
}

// x <- x_prev, in place (x holds x_t on entry):
//   x0 = clip(x0_from_x x - x0_from_eps eps); eps' = eps, or (x - sqrt_acp x0) / sqrt_1m_acp where the clip bit;
//   x  = clamp(x_from_x0 x0 + x_from_eps eps' + sigma z)
template <class T>
void ddim_step(cpu, hview<T> x, hcview<T> eps, const ddim_step_coefs<T>& c, std::uint64_t seed,
               std::uint64_t stream) {
  CPDIFF_ASSERT(x.size() == eps.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
  T* xp = x.data();
  const T* ep = eps.data();
  const bool noise = c.sigma != T(0);
#pragma omp parallel for num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T xt = xp[i];
    const T x0_raw = c.x0_from_x * xt - c.x0_from_eps * ep[i];
    const T x0 = detail::diffusion_clamp(x0_raw, c.x0_clip);
    // Keep x_prev consistent with the clipped x0 (improved-diffusion's ddim_sample does the same).
    const T e = x0 == x0_raw ? ep[i] : (xt - c.sqrt_acp * x0) / c.sqrt_1m_acp;
    T v = c.x_from_x0 * x0 + c.x_from_eps * e;
    if (noise) v += c.sigma * static_cast<T>(philox_normal(seed, stream, static_cast<std::uint64_t>(i)));
    xp[i] = detail::diffusion_clamp(v, c.x_clip);
  }
}

// Classifier-free guidance: out = eps_uncond + scale * (eps_cond - eps_uncond). scale 1 is the
// conditional model, 0 the unconditional one, > 1 pushes further toward the condition.
template <class T>
void cfg_combine(cpu, hcview<T> eps_uncond, hcview<T> eps_cond, T scale, hview<T> out) {
  CPDIFF_CHECK(eps_uncond.shape() == eps_cond.shape() && out.size() == eps_cond.size(), shape_error,
               "ops::cfg_combine", "eps_uncond ", eps_uncond.shape(), ", eps_cond ", eps_cond.shape(), " and out ",
               out.shape(), " must match");
  transform(cpu{}, eps_uncond, eps_cond, out, [scale](T u, T c) { return u + scale * (c - u); });
}

}  // namespace cpdiff::ops
