#pragma once
// CUDA kernels of the normalisation layers, one for one with backend/cpu/norms.hpp (same names, same
// parameters, `cuda const&` first, device pointers). The two layouts:
//   rows      x [rows, n]: statistics per contiguous row (instance, group and layer norm).
//   channels  x [outer, C, inner]: one value per channel c (batch-norm statistics, every affine).
// Same statistics conventions as the CPU: accumulators of at least double (norm_acc_t), the sums
// shifted by the row's (channel's) first element, biased variance, the statistics rounded to T once
// and the rounded values used to normalise. Each reduction is one block per row / channel with warp
// shuffles: a fixed assignment of elements to threads and a fixed tree, so results do not depend on
// timing (bit-for-bit repeatable run to run), though they are not bitwise those of the CPU.
// Outputs may alias inputs where the CPU version allows it (each thread reads an element before it
// writes it, and every read of a reduction happens before the block's barrier).
//
// The block-reduction helpers below (cuda_reduce) are shared with conv.cuh and pooling.cuh.
#include <cstddef>
#include <type_traits>

#include <cuda_runtime.h>

#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/backend/cuda/check.cuh"

namespace cpdiff::ops {

namespace cuda_reduce {

// Accumulator type of a reduction over T: double for float, T itself from double up (as the CPU).
template <class T>
using acc_t = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

inline constexpr unsigned max_grid = 1u << 30;  // under gridDim.x's 2^31 - 1; loops stride past it

// Threads for a block that reduces n elements: a multiple of 32, at most 512.
inline unsigned block_for(std::size_t n) {
  if (n >= 4096) return 512;
  if (n >= 1024) return 256;
  const std::size_t w = (n + 31) / 32 * 32;
  return static_cast<unsigned>(w < 32 ? 32 : (w > 128 ? 128 : w));
}
// Blocks of `block` threads for one thread per element of `count` (grid-stride loops beyond max_grid).
inline unsigned grid_for(std::size_t count, unsigned block) {
  const std::size_t g = (count + block - 1) / block;
  return static_cast<unsigned>(g == 0 ? 1 : (g > max_grid ? max_grid : g));
}

template <class A>
__device__ inline A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// a and b summed over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// totals. Contains __syncthreads: call it from all threads of the block.
template <class A>
__device__ inline void block_sum2(A& a, A& b) {
  __shared__ A sa[32], sb[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads();  // a previous call's readers are done with sa / sb
  if (lane == 0) sa[warp] = a, sb[warp] = b;
  __syncthreads();
  if (warp == 0) {
    a = lane < warps ? sa[lane] : A(0);
    b = lane < warps ? sb[lane] : A(0);
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) sa[0] = a, sb[0] = b;
  }
  __syncthreads();
  a = sa[0];
  b = sb[0];
}

}  // namespace cuda_reduce

namespace norms_cuda_detail {

using cuda_reduce::acc_t;
using cuda_reduce::block_sum2;

// One block per row r of x [rows, n].
template <class T>
__global__ void row_norm_forward_kernel(const T* x, std::size_t rows, std::size_t n, T eps, T* xhat, T* mean,
                                        T* istd) {
  using A = acc_t<T>;
  for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    const A k = A(xr[0]);
    A s = 0, ss = 0;
    for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) {
      const A d = A(xr[i]) - k;
      s += d;
      ss += d * d;
    }
    block_sum2(s, ss);
    // mean = k + E[x-k], var = E[(x-k)^2] - E[x-k]^2 (biased), rounded to T as the CPU stores them
    const A m = s / A(n), v = ss / A(n) - m * m;
    const T mt = T(k + m), it = T(A(1) / sqrt((v > A(0) ? v : A(0)) + A(eps)));
    if (threadIdx.x == 0) mean[r] = mt, istd[r] = it;
    T* yr = xhat + r * n;
    for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = (xr[i] - mt) * it;
  }
}

// One block per row: dx = istd * (g - mean(g) - xhat * mean(g * xhat)).
template <class T>
__global__ void row_norm_backward_kernel(const T* xhat, const T* g, const T* istd, std::size_t rows, std::size_t n,
                                         T* dx) {
  using A = acc_t<T>;
  for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *hr = xhat + r * n, *gr = g + r * n;
    A s = 0, sh = 0;
    for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) {
      s += A(gr[i]);
      sh += A(gr[i]) * A(hr[i]);
    }
    block_sum2(s, sh);
    const T a = T(s / A(n)), c = T(sh / A(n)), is = istd[r];
    T* dr = dx + r * n;
    for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) dr[i] = is * (gr[i] - a - hr[i] * c);
  }
}

// Element m of channel c in x [outer, C, inner], m = o*inner + i.
__device__ inline std::size_t channel_index(std::size_t m, std::size_t c, std::size_t C, std::size_t inner) {
  return ((m / inner) * C + c) * inner + m % inner;
}

// One block per channel: shifted moments over outer and inner.
template <class T>
__global__ void channel_moments_kernel(const T* x, std::size_t outer, std::size_t C, std::size_t inner, T* mean,
                                       T* var) {
  using A = acc_t<T>;
  const std::size_t count = outer * inner;
  for (std::size_t c = blockIdx.x; c < C; c += gridDim.x) {
    const A k = A(x[c * inner]);
    A s = 0, ss = 0;
    for (std::size_t m = threadIdx.x; m < count; m += blockDim.x) {
      const A d = A(x[channel_index(m, c, C, inner)]) - k;
      s += d;
      ss += d * d;
    }
    block_sum2(s, ss);
    if (threadIdx.x == 0) {
      const A mu = s / A(count), v = ss / A(count) - mu * mu;
      mean[c] = T(k + mu);
      var[c] = T(v > A(0) ? v : A(0));
    }
  }
}

template <class T>
__global__ void channel_inverse_std_kernel(const T* var, std::size_t C, T eps, T* istd) {
  for (std::size_t c = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; c < C; c += std::size_t(gridDim.x) * blockDim.x)
    istd[c] = T(1) / sqrt(var[c] + eps);
}

// y = x * scale[c] + shift[c] (shift may be null), element-wise over [outer, C, inner].
template <class T>
__global__ void channel_affine_kernel(const T* x, const T* scale, const T* shift, std::size_t total, std::size_t C,
                                      std::size_t inner, T* y) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t c = (e / inner) % C;
    y[e] = x[e] * scale[c] + (shift ? shift[c] : T(0));
  }
}

template <class T>
__global__ void channel_normalize_kernel(const T* x, const T* mean, const T* istd, std::size_t total, std::size_t C,
                                         std::size_t inner, T* xhat) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t c = (e / inner) % C;
    xhat[e] = (x[e] - mean[c]) * istd[c];
  }
}

// One block per channel: dscale[c] += sum dy * xhat, dshift[c] += sum dy (either may be null).
template <class T>
__global__ void channel_affine_backward_kernel(const T* xhat, const T* dy, std::size_t outer, std::size_t C,
                                               std::size_t inner, T* dscale, T* dshift) {
  using A = acc_t<T>;
  const std::size_t count = outer * inner;
  for (std::size_t c = blockIdx.x; c < C; c += gridDim.x) {
    A sg = 0, sb = 0;
    for (std::size_t m = threadIdx.x; m < count; m += blockDim.x) {
      const std::size_t e = channel_index(m, c, C, inner);
      sg += A(dy[e]) * A(xhat[e]);
      sb += A(dy[e]);
    }
    block_sum2(sg, sb);
    if (threadIdx.x == 0) {
      if (dscale) dscale[c] += T(sg);
      if (dshift) dshift[c] += T(sb);
    }
  }
}

// One block per channel: dx = istd[c] * (g - mean(g) - xhat * mean(g * xhat)) over outer and inner.
template <class T>
__global__ void channel_norm_backward_kernel(const T* xhat, const T* g, const T* istd, std::size_t outer, std::size_t C,
                                             std::size_t inner, T* dx) {
  using A = acc_t<T>;
  const std::size_t count = outer * inner;
  for (std::size_t c = blockIdx.x; c < C; c += gridDim.x) {
    A s = 0, sh = 0;
    for (std::size_t m = threadIdx.x; m < count; m += blockDim.x) {
      const std::size_t e = channel_index(m, c, C, inner);
      s += A(g[e]);
      sh += A(g[e]) * A(xhat[e]);
    }
    block_sum2(s, sh);
    const T a = T(s / A(count)), b = T(sh / A(count)), is = istd[c];
    for (std::size_t m = threadIdx.x; m < count; m += blockDim.x) {
      const std::size_t e = channel_index(m, c, C, inner);
      dx[e] = is * (g[e] - a - xhat[e] * b);
    }
  }
}

template <class T>
__global__ void running_stats_update_kernel(const T* mean, const T* var, std::size_t C, T unbias, T momentum,
                                            T* running_mean, T* running_var) {
  for (std::size_t c = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; c < C; c += std::size_t(gridDim.x) * blockDim.x) {
    running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var[c] * unbias;
  }
}

inline constexpr unsigned elementwise_block = 256;

}  // namespace norms_cuda_detail

// Per row of x [rows, n]: mean[r], istd[r] = 1 / sqrt(biased var + eps), xhat = (x - mean) * istd.
template <class T>
void row_norm_forward(const gpu& be, dcptr<T> x_dev, std::size_t rows, std::size_t n,
                      T eps, device_ptr<T> xhat_dev, device_ptr<T> mean_dev, device_ptr<T> istd_dev) {
  const T* x = x_dev.get();
  T* xhat = xhat_dev.get();
  T* mean = mean_dev.get();
  T* istd = istd_dev.get();
  if (rows == 0 || n == 0) return;
  const unsigned grid = static_cast<unsigned>(rows < cuda_reduce::max_grid ? rows : cuda_reduce::max_grid);
  norms_cuda_detail::row_norm_forward_kernel<<<grid, cuda_reduce::block_for(n), 0, be.stream>>>(x, rows, n, eps, xhat,
                                                                                                mean, istd);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Per row: dx = istd * (g - mean(g) - xhat * mean(g * xhat)), g = dL/dxhat.  dx may alias g.
template <class T>
void row_norm_backward(const gpu& be, dcptr<T> xhat_dev,
                       dcptr<T> g_dev,
                       dcptr<T> istd_dev, std::size_t rows, std::size_t n,
                       device_ptr<T> dx_dev) {
  const T* xhat = xhat_dev.get();
  const T* g = g_dev.get();
  const T* istd = istd_dev.get();
  T* dx = dx_dev.get();
  if (rows == 0 || n == 0) return;
  const unsigned grid = static_cast<unsigned>(rows < cuda_reduce::max_grid ? rows : cuda_reduce::max_grid);
  norms_cuda_detail::row_norm_backward_kernel<<<grid, cuda_reduce::block_for(n), 0, be.stream>>>(xhat, g, istd, rows,
                                                                                                 n, dx);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Per channel of x [outer, C, inner], over outer and inner: mean[c] and biased variance var[c].
template <class T>
void channel_moments(const gpu& be, dcptr<T> x_dev, std::size_t outer, std::size_t C,
                     std::size_t inner, device_ptr<T> mean_dev, device_ptr<T> var_dev) {
  const T* x = x_dev.get();
  T* mean = mean_dev.get();
  T* var = var_dev.get();
  if (C == 0 || outer * inner == 0) return;
  const unsigned grid = static_cast<unsigned>(C < cuda_reduce::max_grid ? C : cuda_reduce::max_grid);
  norms_cuda_detail::channel_moments_kernel<<<grid, cuda_reduce::block_for(outer * inner), 0, be.stream>>>(
      x, outer, C, inner, mean, var);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// istd[c] = 1 / sqrt(var[c] + eps)
template <class T>
void channel_inverse_std(const gpu& be, dcptr<T> var_dev, std::size_t C, T eps,
                         device_ptr<T> istd_dev) {
  const T* var = var_dev.get();
  T* istd = istd_dev.get();
  if (C == 0) return;
  constexpr unsigned block = norms_cuda_detail::elementwise_block;
  norms_cuda_detail::channel_inverse_std_kernel<<<cuda_reduce::grid_for(C, block), block, 0, be.stream>>>(var, C, eps,
                                                                                                          istd);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// y[o, c, i] = x[o, c, i] * scale[c] + shift[c]   (shift may be null: 0).  y may alias x.
template <class T>
void channel_affine(const gpu& be, dcptr<T> x_dev,
                    dcptr<T> scale_dev,
                    dcptr<T> shift_dev, std::size_t outer, std::size_t C,
                    std::size_t inner, device_ptr<T> y_dev) {
  const T* x = x_dev.get();
  const T* scale = scale_dev.get();
  const T* shift = shift_dev.get();
  T* y = y_dev.get();
  const std::size_t total = outer * C * inner;
  if (total == 0) return;
  constexpr unsigned block = norms_cuda_detail::elementwise_block;
  norms_cuda_detail::channel_affine_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(
      x, scale, shift, total, C, inner, y);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// xhat[o, c, i] = (x[o, c, i] - mean[c]) * istd[c]
template <class T>
void channel_normalize(const gpu& be, dcptr<T> x_dev,
                       dcptr<T> mean_dev,
                       dcptr<T> istd_dev, std::size_t outer, std::size_t C,
                       std::size_t inner, device_ptr<T> xhat_dev) {
  const T* x = x_dev.get();
  const T* mean = mean_dev.get();
  const T* istd = istd_dev.get();
  T* xhat = xhat_dev.get();
  const std::size_t total = outer * C * inner;
  if (total == 0) return;
  constexpr unsigned block = norms_cuda_detail::elementwise_block;
  norms_cuda_detail::channel_normalize_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(
      x, mean, istd, total, C, inner, xhat);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Affine parameter gradients: dscale[c] += sum_{o,i} dy * xhat ; dshift[c] += sum_{o,i} dy (either may be null).
template <class T>
void channel_affine_backward(const gpu& be, dcptr<T> xhat_dev,
                             dcptr<T> dy_dev, std::size_t outer, std::size_t C,
                             std::size_t inner, device_ptr<T> dscale_dev, device_ptr<T> dshift_dev) {
  const T* xhat = xhat_dev.get();
  const T* dy = dy_dev.get();
  T* dscale = dscale_dev.get();
  T* dshift = dshift_dev.get();
  if ((!dscale && !dshift) || C == 0 || outer * inner == 0) return;
  const unsigned grid = static_cast<unsigned>(C < cuda_reduce::max_grid ? C : cuda_reduce::max_grid);
  norms_cuda_detail::channel_affine_backward_kernel<<<grid, cuda_reduce::block_for(outer * inner), 0, be.stream>>>(
      xhat, dy, outer, C, inner, dscale, dshift);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Batch-norm input gradient (batch statistics), per channel over outer and inner:
// dx = istd[c] * (g - mean(g) - xhat * mean(g * xhat)), g = dL/dxhat.  dx may alias g.
template <class T>
void channel_norm_backward(const gpu& be, dcptr<T> xhat_dev,
                           dcptr<T> g_dev,
                           dcptr<T> istd_dev, std::size_t outer, std::size_t C,
                           std::size_t inner, device_ptr<T> dx_dev) {
  const T* xhat = xhat_dev.get();
  const T* g = g_dev.get();
  const T* istd = istd_dev.get();
  T* dx = dx_dev.get();
  if (C == 0 || outer * inner == 0) return;
  const unsigned grid = static_cast<unsigned>(C < cuda_reduce::max_grid ? C : cuda_reduce::max_grid);
  norms_cuda_detail::channel_norm_backward_kernel<<<grid, cuda_reduce::block_for(outer * inner), 0, be.stream>>>(
      xhat, g, istd, outer, C, inner, dx);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Running statistics (PyTorch): r_mean = (1-m) r_mean + m mean; r_var = (1-m) r_var + m var * count / (count - 1).
template <class T>
void running_stats_update(const gpu& be, dcptr<T> mean_dev,
                          dcptr<T> var_dev, std::size_t C, std::size_t count,
                          T momentum,
                          device_ptr<T> running_mean_dev, device_ptr<T> running_var_dev) {
  const T* mean = mean_dev.get();
  const T* var = var_dev.get();
  T* running_mean = running_mean_dev.get();
  T* running_var = running_var_dev.get();
  if (C == 0) return;
  const T unbias = T(count) / T(count - 1);
  constexpr unsigned block = norms_cuda_detail::elementwise_block;
  norms_cuda_detail::running_stats_update_kernel<<<cuda_reduce::grid_for(C, block), block, 0, be.stream>>>(
      mean, var, C, unbias, momentum, running_mean, running_var);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

}  // namespace cpdiff::ops
