#pragma once
// The op catalogue: the one header that layers, models, samplers, optimisers and trainers include to call
// kernels. It holds what is backend-neutral (the geometry structs, `trans`, the diffusion step
// coefficients, the checks' result types, view aliases) and lists every op's signature; backend/cpu/
// (for cpdiff::cpu) and backend/cuda/ (for cpdiff::gpu) implement them, and nothing above the backend
// includes those. Calls are unqualified (`gemm(be_, ...)`): argument-dependent lookup on the backend value
// finds the implementation at instantiation, so the umbrella header (or a program) includes the kernels.
//
// Memory crosses the boundary typed by its space: views tensor_view<T, Space>, or the space's pointer
// P<T> = space_pointer_t<T, memory_space_t<B>> (T* for cpu, device_ptr<T> for gpu). A host address
// cannot reach a GPU kernel and a device address cannot reach a CPU kernel: neither compiles.
// V<T> below is tensor_view<T, memory_space_t<B>>; all row-major.
//
// Matrix products (blas)
//   gemm(B, trans ta, trans tb, M, N, K, T alpha, P<const T> A, lda, P<const T> B, ldb, T beta, P<T> C, ldc)
//       C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C
//   gemm_batched(B, ta, tb, M, N, K, T alpha, P<const T> A, lda, stride_a, P<const T> B, ldb, stride_b, T beta,
//                P<T> C, ldc, stride_c, batch)       the same for C + b stride_c, b < batch (one call, many products)
// Element-wise, fills, reductions, transfers (elementwise)
//   fill(B, V<T> y, T v)   copy(B, V<const T> x, V<T> y)   axpy(B, T a, V<const T> x, V<T> y)   scale(B, V<T> y, T a)
//   add_row_vector(B, V<T> y [R, C], V<const T> v [C])       add_column_sums(B, V<const T> x [R, C], V<T> s [C])
//   copy_rows(B, P<const T> src, src_ld, P<T> dst, dst_ld, rows, cols)
//   transpose_batched(B, batch, rows, cols, P<const T> x, P<T> y)      y[b, c, r] = x[b, r, c]
//   transform(B, x, y, f) / (B, x, y, z, f) / (B, x, y, z, w, f): the last view is written, f a CPDIFF_HD functor
//   fill_uniform(B, V<T> y, lo, hi, seed, stream, offset = 0)   fill_normal(B, V<T> y, mean, stddev, seed, stream, offset = 0)
//                                                     (Philox, counters offset + i)
//   sum(B, V<const T>) -> double   sum_squares(B, V<const T>) -> double   all_finite(B, V<const T>) -> bool
//   to_host(B, V<const T>) -> std::vector<T>   from_host(B, std::span<const T>, V<T>)
// Broadcasts and concatenation
//   add_over_channels(B, P<const T> x, P<const T> e, P<T> y, n, c, s)    y[n,c,s] = x[n,c,s] + e[n,c]
//   add_channel_sums(B, P<const T> d, P<T> de, n, c, s)                   de[n,c] += sum_s d[n,c,s]
//   concat_forward(B, P<const T> a, P<const T> b, P<T> y, outer, na, nb, inner)
//   concat_backward(B, P<const T> dy, P<T> da, P<T> db, outer, na, nb, inner)
// Convolution (conv_geometry; the workspace is sized by conv_workspace_size(B, g))
//   conv_forward(B, g, P<const T> x, P<const T> w, P<const T> b or null, P<T> y, P<T> work, work_size)
//   conv_backward_data(B, g, P<const T> dy, P<const T> w, P<T> dx, P<T> work, work_size)
//   conv_backward_weight(B, g, P<const T> x, P<const T> dy, P<T> dw (added into), P<T> work, work_size)
//   conv_bias_forward(B, n, c, plane, P<const T> b, P<T> y)   conv_bias_backward(B, n, c, plane, P<const T> dy, P<T> db)
// Pooling (pool2d_geometry)
//   avg_pool2d_forward(B, g, P<const T> x, P<T> y)   avg_pool2d_backward(B, g, P<const T> dy, P<T> dx)
//   global_avg_pool_forward(B, rows, len, P<const T> x, P<T> y)   global_avg_pool_backward(B, rows, len, dy, dx)
// Normalisation
//   row_norm_forward(B, x, rows, n, eps, xhat, mean, istd)   row_norm_backward(B, xhat, g, istd, rows, n, dx)
//   channel_moments(B, x, outer, C, inner, mean, var)   channel_inverse_std(B, var, C, eps, istd)
//   channel_affine(B, x, scale, shift, outer, C, inner, y)   channel_normalize(B, x, mean, istd, outer, C, inner, xhat)
//   channel_affine_backward(B, xhat, dy, outer, C, inner, dscale, dshift)
//   channel_norm_backward(B, xhat, g, istd, outer, C, inner, dx)
//   running_stats_update(B, mean, var, C, count, momentum, running_mean, running_var)      (all P<...>)
// Softmax (attention)
//   softmax_rows_forward(B, rows, n, P<const T> x, P<T> y)              y[r, :] = softmax(x[r, :])
//   softmax_rows_backward(B, rows, n, P<const T> y, P<const T> dy, P<T> dx)   dx = y (dy - <dy, y>) per row
// Embedding (I = int32 or int64, indices in the backend's space)
//   find_index_out_of_range(B, P<const I> idx, n, num) -> std::optional<index_violation>
//   embedding_gather(B, P<const I> idx, n, P<const T> table, dim, P<T> y)
//   embedding_scatter_add(B, P<const I> idx, n, P<const T> dy, dim, P<T> dtable)
// Losses
//   mse_forward(B, pred, target, n) -> double   mse_backward(B, pred, target, dpred, n, scale)
//   find_invalid_label(B, P<const I> target, n, classes) -> invalid_label
//   cross_entropy_forward(B, logits, P<const I> target, prob, N, C) -> double
//   cross_entropy_backward(B, prob, P<const I> target, dlogits, N, C, scale)
// Dropout
//   dropout_mask_apply(B, P<const T> x, P<T> y, n, p, seed, stream)
// Diffusion
//   q_sample(B, V x0, V eps, V a [N], V b [N], V xt)   ddpm_mse_and_grad(B, V pred, V target, V dpred) -> double
//   ddpm_step(B, V x, V eps, ddpm_step_coefs, seed, stream)   ddim_step(B, V x, V eps, ddim_step_coefs, seed, stream)
//   cfg_combine(B, V eps_uncond, V eps_cond, T scale, V out)
// Optimisers
//   adamw_update(B, p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2)
//   sgd_update(B, p, g, buf, n, lr, momentum, dampening, weight_decay, nesterov, first_step)
//   ema_update(B, shadow, p, n, decay)   swap_buffers(B, a, b, n)                            (all P<...>)
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/memory_space.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::ops {

enum class trans { no, yes };

// Views of host / device memory, as kernels spell their parameters.
template <class T>
using hview = tensor_view<T, host_space>;
template <class T>
using hcview = tensor_view<const T, host_space>;
template <class T>
using dview = tensor_view<T, device_space>;
template <class T>
using dcview = tensor_view<const T, device_space>;
// A GPU kernel's read-only input: device_ptr<const T> with T taken from the other arguments, so that a
// device_ptr<T> converts to it (a class template's conversion does not happen during deduction).
template <class T>
using dcptr = std::type_identity_t<device_ptr<const T>>;

// One DDPM ancestral step at timestep t (shared by every sample of the batch). The coefficients are
// computed in double on the host by the samplers and passed by value to either backend.
template <class T>
struct ddpm_step_coefs {
  T x0_from_x;     // sqrt(1 / acp_t)           x0 = x0_from_x * x_t - x0_from_eps * eps
  T x0_from_eps;   // sqrt(1 / acp_t - 1)
  T mean_from_x0;  // posterior_mean_coef1[t]   mean = mean_from_x0 * x0 + mean_from_x * x_t
  T mean_from_x;   // posterior_mean_coef2[t]
  T sigma;         // sqrt(reverse variance); 0 adds no noise (t = 0)
  T x0_clip;       // x0 clamped to [-x0_clip, x0_clip]; +inf for no clipping
  T x_clip;        // x_{t-1} clamped to [-x_clip, x_clip]; +inf for no clamping
};

// One DDIM step from timestep t to the previous one in the sub-sequence (acp_prev = 1 after the last).
template <class T>
struct ddim_step_coefs {
  T x0_from_x;    // sqrt(1 / acp_t)
  T x0_from_eps;  // sqrt(1 / acp_t - 1)
  T sqrt_acp;     // sqrt(acp_t)       eps re-derived from a clipped x0: (x_t - sqrt_acp x0) / sqrt_1m_acp
  T sqrt_1m_acp;  // sqrt(1 - acp_t)
  T x_from_x0;    // sqrt(acp_prev)    x_prev = x_from_x0 x0 + x_from_eps eps + sigma z
  T x_from_eps;   // sqrt(1 - acp_prev - sigma^2)
  T sigma;        // eta * sqrt((1 - acp_prev) / (1 - acp_t) * (1 - acp_t / acp_prev))
  T x0_clip;      // +inf for no clipping
  T x_clip;       // +inf for no clamping
};

// Embedding indices: int32 or int64, as PyTorch accepts.
template <class I>
concept embedding_index = std::is_same_v<std::remove_const_t<I>, std::int32_t> || std::is_same_v<std::remove_const_t<I>, std::int64_t>;

// The first index outside [0, num), with its position (checked before any lookup).
struct index_violation {
  std::size_t position;
  std::int64_t value;
};

// The first class label outside [0, classes), if any (index -1 when all are valid).
struct invalid_label {
  std::ptrdiff_t index = -1;
  long long value = 0;
};

}  // namespace cpdiff::ops
