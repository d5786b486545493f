#pragma once
// CUDA kernels of the diffusion objective and samplers, one overload per kernel of
// backend/cpu/diffusion.hpp. The step coefficient structs (ddpm_step_coefs, ddim_step_coefs) are the
// catalogue's (ops.hpp), passed by value into the kernels. Noise inside a step is philox_normal(seed, stream, i)
// as on the CPU: the same z for element i on any backend (to the GPU's log / sin / cos, a few ulp).
#include <cstddef>
#include <cstdint>

#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include "cpdiff/backend/ops.hpp"  // ddpm_step_coefs, ddim_step_coefs
#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/core/rng.hpp"

namespace cpdiff::ops {

namespace cuda_impl {

// min(max(v, -c), c) with std::min / std::max's NaN behaviour: a NaN v stays NaN.
template <class T>
__device__ inline T diffusion_clamp(T v, T c) {
  const T lo = v < -c ? -c : v;
  return c < lo ? c : lo;
}

template <class T>
struct q_sample_op {
  const T *x0, *eps, *a, *b;
  T* xt;
  std::size_t d;  // elements per sample
  __device__ void operator()(std::size_t i) const {
    const std::size_t r = i / d;
    xt[i] = a[r] * x0[i] + b[r] * eps[i];
  }
};

// Writes dpred[i] and returns (pred - target)^2 in double. The write is idempotent, so it is safe inside
// a reduction's transform.
template <class T>
struct mse_grad_term {
  const T *pred, *target;
  T* dpred;
  T g;
  __device__ double operator()(std::size_t i) const {
    const T r = pred[i] - target[i];
    dpred[i] = g * r;
    return static_cast<double>(r) * static_cast<double>(r);
  }
};

template <class T>
struct ddpm_step_op {
  T* x;
  const T* eps;
  ddpm_step_coefs<T> c;
  std::uint64_t seed, stream;
  __device__ void operator()(std::size_t i) const {
    const T xt = x[i];
    const T x0 = diffusion_clamp(c.x0_from_x * xt - c.x0_from_eps * eps[i], c.x0_clip);
    T v = c.mean_from_x0 * x0 + c.mean_from_x * xt;
    if (c.sigma != T(0)) v += c.sigma * static_cast<T>(philox_normal(seed, stream, i));
    x[i] = diffusion_clamp(v, c.x_clip);
  }
};

template <class T>
struct ddim_step_op {
  T* x;
  const T* eps;
  ddim_step_coefs<T> c;
  std::uint64_t seed, stream;
  __device__ void operator()(std::size_t i) const {
    const T xt = x[i];
    const T x0_raw = c.x0_from_x * xt - c.x0_from_eps * eps[i];
    const T x0 = diffusion_clamp(x0_raw, c.x0_clip);
    const T e = x0 == x0_raw ? eps[i] : (xt - c.sqrt_acp * x0) / c.sqrt_1m_acp;
    T v = c.x_from_x0 * x0 + c.x_from_eps * e;
    if (c.sigma != T(0)) v += c.sigma * static_cast<T>(philox_normal(seed, stream, i));
    x[i] = diffusion_clamp(v, c.x_clip);
  }
};

// out = u + scale (c - u), a named functor (the CPU version's lambda cannot run on the device).
template <class T>
struct cfg_mix_fn {
  T scale;
  __host__ __device__ T operator()(T u, T c) const { return u + scale * (c - u); }
};

}  // namespace cuda_impl

// x_t[n, :] = a[n] * x0[n, :] + b[n] * eps[n, :]      x0, eps, x_t [N, ...]   a, b [N]
template <class T>
void q_sample(const gpu& be, dcview<T> x0, dcview<T> eps, dcview<T> a, dcview<T> b, dview<T> xt) {
  CPDIFF_ASSERT(x0.size() == eps.size() && x0.size() == xt.size() && a.size() == b.size());
  if (a.empty()) return;
  const std::size_t d = x0.size() / a.size();
  if (d == 0) return;
  cuda_impl::launch_n(be, x0.size(), cuda_impl::q_sample_op<T>{x0.data().get(), eps.data().get(), a.data().get(), b.data().get(), xt.data().get(), d});
}

// loss = mean((pred - target)^2); dpred = 2 (pred - target) / numel. Returns loss (double); waits.
template <class T>
double ddpm_mse_and_grad(const gpu& be, dcview<T> pred, dcview<T> target, dview<T> dpred) {
  CPDIFF_ASSERT(pred.size() == target.size() && pred.size() == dpred.size() && pred.size() > 0);
  const std::size_t n = pred.size();
  const T g = T(2) / static_cast<T>(n);
  const double s = cuda_impl::thrust_call("ops::ddpm_mse_and_grad(cuda)", [&] {
    return thrust::transform_reduce(thrust::cuda::par.on(be.stream), thrust::counting_iterator<std::size_t>(0),
                                    thrust::counting_iterator<std::size_t>(n),
                                    cuda_impl::mse_grad_term<T>{pred.data().get(), target.data().get(), dpred.data().get(), g}, 0.0,
                                    cuda_impl::plus_double{});
  });
  return s / static_cast<double>(n);
}

// x <- x_{t-1} in place; see backend/cpu/diffusion.hpp.
template <class T>
void ddpm_step(const gpu& be, dview<T> x, dcview<T> eps, const ddpm_step_coefs<T>& c, std::uint64_t seed,
               std::uint64_t stream) {
  CPDIFF_ASSERT(x.size() == eps.size());
  cuda_impl::launch_n(be, x.size(), cuda_impl::ddpm_step_op<T>{x.data().get(), eps.data().get(), c, seed, stream});
}

// x <- x_prev in place; see backend/cpu/diffusion.hpp.
template <class T>
void ddim_step(const gpu& be, dview<T> x, dcview<T> eps, const ddim_step_coefs<T>& c, std::uint64_t seed,
               std::uint64_t stream) {
  CPDIFF_ASSERT(x.size() == eps.size());
  cuda_impl::launch_n(be, x.size(), cuda_impl::ddim_step_op<T>{x.data().get(), eps.data().get(), c, seed, stream});
}

// Classifier-free guidance: out = eps_uncond + scale * (eps_cond - eps_uncond).
template <class T>
void cfg_combine(const gpu& be, dcview<T> eps_uncond, dcview<T> eps_cond, T scale, dview<T> out) {
  CPDIFF_CHECK(eps_uncond.shape() == eps_cond.shape() && out.size() == eps_cond.size(), shape_error,
               "ops::cfg_combine", "eps_uncond ", eps_uncond.shape(), ", eps_cond ", eps_cond.shape(), " and out ",
               out.shape(), " must match");
  transform(be, eps_uncond, eps_cond, out, cuda_impl::cfg_mix_fn<T>{scale});
}

}  // namespace cpdiff::ops
