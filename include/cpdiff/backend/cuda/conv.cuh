#pragma once
// CUDA convolution kernels (1-D and 2-D, see conv_geometry.hpp), one for one with backend/cpu/conv.hpp.
// Two algorithms, chosen by the same rule as the CPU (use_direct; conv_geometry::algo forces one):
//   gemm    the samples in chunks of nb (as many as the workspace budget holds), each chunk lowered by
//           im2col_batched to col [R, nb, P] (R = c_in*k_h*k_w, P = out_h*out_w), then
//             forward       y_b [c_out, P] = W [c_out, R] col_b [R, P]         one strided-batched GEMM
//             data grad     dcol_b [R, P] = W^T [R, c_out] dy_b [c_out, P]     one strided-batched GEMM,
//                           dx_b = col2im(dcol_b)
//             weight grad   dW [c_out, R] += dy^T [c_out, nb*P] col^T [nb*P, R] one GEMM over the chunk,
//                           dy^T = dy [nb, c_out, P] transposed to [c_out, nb, P]
//           (a 1x1 convolution skips im2col in forward and data grad: col_b is x_b itself).
//   direct  few output channels and a short kernel row (the p-diff autoencoder's 1..8-channel layers):
//           the kernels of conv_direct.cuh, one thread per output / input element and a two-stage,
//           atomic-free reduction for the weight gradient (partial sums in the workspace).
// The transposed convolution is the adjoint pair: its forward is conv_backward_data, its data gradient
// conv_forward (nn/conv_transpose1d.hpp). No atomics in these kernels: results repeat run to run.
// The workspace is scratch the caller owns (conv_workspace_size elements, re-checked here).
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cuda/blas.cuh"
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/conv_direct.cuh"
#include "cpdiff/backend/cuda/im2col.cuh"
#include "cpdiff/backend/cuda/norms.cuh"  // cuda_reduce: block sums and launch sizes
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/core/error.hpp"

namespace cpdiff::ops {

namespace conv_cuda_detail {

using cuda_reduce::acc_t;

// Same rule as the CPU (backend/cpu/conv.hpp), so that both backends take the same path by default.
inline bool use_direct(const conv_geometry& g) {
  if (g.algo != conv_algorithm::automatic) return g.algo == conv_algorithm::direct;
  return !g.pointwise() && g.c_out <= 8 && g.col_rows() <= 64;
}

// GEMM path: elements of scratch per chunk at most (64 MiB of floats; each conv layer owns its
// workspace), but always one sample. A variable only so that tests can shrink it to exercise chunking;
// change it only between passes (the workspace size of a forward must hold for its backward).
inline std::size_t chunk_budget = std::size_t(1) << 24;
inline std::size_t gemm_per_sample(const conv_geometry& g) { return (g.col_rows() + g.c_out) * g.col_cols(); }
inline std::size_t chunk_samples(const conv_geometry& g) {
  const std::size_t per = gemm_per_sample(g);
  std::size_t nb = per == 0 ? g.n : chunk_budget / per;
  if (nb < 1) nb = 1;
  return nb < g.n ? nb : g.n;
}

// Direct weight gradient: slices of the n*P positions per weight element, enough blocks to fill the
// device (about 4096) but at least ~2048 positions per block.
inline std::size_t wgrad_slices(const conv_geometry& g) {
  const std::size_t w = g.weight_size(), len = g.n * g.col_cols();
  if (w == 0 || len == 0) return 1;
  std::size_t s = (4096 + w - 1) / w;
  const std::size_t by_len = len / 2048 > 0 ? len / 2048 : 1;
  if (s > by_len) s = by_len;
  return s > 65535 ? 65535 : s;
}
// Partial sums of the direct weight gradient: weight_size * slices of acc_t<T>, in elements of T.
template <class T>
std::size_t wgrad_elements(const conv_geometry& g) {
  return (g.weight_size() * wgrad_slices(g) * sizeof(acc_t<T>) + sizeof(T) - 1) / sizeof(T);
}

// Scratch for element type T. conv_workspace_size (like the CPU's) does not know T, so it asks for the
// larger of float's and double's needs; the kernels check the exact need for their T.
template <class T>
std::size_t workspace(const conv_geometry& g) {
  if (g.n == 0) return 0;
  return use_direct(g) ? wgrad_elements<T>(g) : chunk_samples(g) * gemm_per_sample(g);
}

inline void check_workspace(std::size_t need, std::size_t have, const char* where) {
  CPDIFF_CHECK(need <= have, shape_error, where, "workspace of ", have, " elements, need ", need,
               " (use conv_workspace_size)");
}

// Row-major C_b = op(A_b) op(B_b) (overwritten) for b < batch, X_b = X + b*stride_X (stride 0 shares one
// matrix), through cuda_impl::gemm_batched_call (blas.cuh).
template <class T>
void gemm_strided_batched(const gpu& be, trans ta, trans tb, std::size_t M, std::size_t N, std::size_t K, const T* A,
                          std::size_t lda, std::size_t sa, const T* B, std::size_t ldb, std::size_t sb, T* C,
                          std::size_t ldc, std::size_t sc, std::size_t batch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cpdiff::ops::conv (cuda): T must be float or double (cuBLAS)");
  if (M == 0 || N == 0 || batch == 0) return;
  using cuda_impl::to_int;
  const T one = T(1), zero = T(0);
  CPDIFF_CUBLAS_CHECK(cuda_impl::gemm_batched_call(cuda_impl::cublas_handle(be), cuda_impl::to_cublas(tb), cuda_impl::to_cublas(ta),
                                        to_int(N, "N"), to_int(M, "M"), to_int(K, "K"), &one, B, to_int(ldb, "ldb"),
                                        static_cast<long long>(sb), A, to_int(lda, "lda"), static_cast<long long>(sa),
                                        &zero, C, to_int(ldc, "ldc"), static_cast<long long>(sc), to_int(batch, "batch")));
}

inline constexpr unsigned block = 256;

// t [c_out, nb, P] = d [nb, c_out, P]
template <class T>
__global__ void transpose_samples_kernel(std::size_t nb, std::size_t c, std::size_t P, const T* d, T* t) {
  const std::size_t total = nb * c * P;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t p = e % P, b = (e / P) % nb, o = e / (P * nb);
    t[e] = d[(b * c + o) * P + p];
  }
}

// y [n, c, plane] += b [c]
template <class T>
__global__ void bias_forward_kernel(std::size_t total, std::size_t c, std::size_t plane, const T* b, T* y) {
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x)
    y[e] += b[(e / plane) % c];
}

// One block per channel o: db[o] += sum over n and the plane of dy [n, c, plane].
template <class T>
__global__ void bias_backward_kernel(std::size_t n, std::size_t c, std::size_t plane, const T* dy, T* db) {
  using A = acc_t<T>;
  const std::size_t count = n * plane;
  for (std::size_t o = blockIdx.x; o < c; o += gridDim.x) {
    A acc = 0, unused = 0;
    for (std::size_t m = threadIdx.x; m < count; m += blockDim.x) acc += A(dy[((m / plane) * c + o) * plane + m % plane]);
    cuda_reduce::block_sum2(acc, unused);
    if (threadIdx.x == 0) db[o] += T(acc);
  }
}

}  // namespace conv_cuda_detail


// Elements of scratch the kernels below need for geometry g (enough for T = float and T = double).
inline std::size_t conv_workspace_size(const gpu&, const conv_geometry& g) {
  const std::size_t f = conv_cuda_detail::workspace<float>(g), d = conv_cuda_detail::workspace<double>(g);
  return f > d ? f : d;
}

// y [n, c, plane] += b [c]   (broadcast along the plane)
template <class T>
void conv_bias_forward(const gpu& be, std::size_t n, std::size_t c, std::size_t plane,
                       dcptr<T> b_dev, device_ptr<T> y_dev) {
  const T* b = b_dev.get();
  T* y = y_dev.get();
  const std::size_t total = n * c * plane;
  if (total == 0) return;
  constexpr unsigned block = conv_cuda_detail::block;
  conv_cuda_detail::bias_forward_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(total, c, plane,
                                                                                                     b, y);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// db [c] += sum over n and the plane of dy [n, c, plane]
template <class T>
void conv_bias_backward(const gpu& be, std::size_t n, std::size_t c, std::size_t plane,
                        dcptr<T> dy_dev, device_ptr<T> db_dev) {
  const T* dy = dy_dev.get();
  T* db = db_dev.get();
  if (c == 0 || n * plane == 0) return;
  const unsigned grid = static_cast<unsigned>(c < cuda_reduce::max_grid ? c : cuda_reduce::max_grid);
  conv_cuda_detail::bias_backward_kernel<<<grid, cuda_reduce::block_for(n * plane), 0, be.stream>>>(n, c, plane, dy, db);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// y [n, c_out, out_h, out_w] = conv(x [n, c_in, in_h, in_w], w [c_out, c_in, k_h, k_w]) + b [c_out] (b may be null)
template <class T>
void conv_forward(const gpu& be, const conv_geometry& g, dcptr<T> x_dev,
                  dcptr<T> w_dev, dcptr<T> b_dev,
                  device_ptr<T> y_dev, device_ptr<T> work_dev,
                  std::size_t work_size) {
  const T* x = x_dev.get();
  const T* w = w_dev.get();
  const T* b = b_dev.get();
  T* y = y_dev.get();
  T* work = work_dev.get();
  using namespace conv_cuda_detail;
  if (g.n == 0 || g.out_sample() == 0) return;
  const std::size_t R = g.col_rows(), P = g.col_cols(), ys = g.out_sample();
  if (use_direct(g)) {
    // y[b, o, i, j] = b[o] + sum of the taps, one thread each
    const std::size_t total = g.n * ys;
    direct_forward_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, x, w, b, y);
    CPDIFF_CUDA_CHECK_LAUNCH();
    return;
  }
  if (g.pointwise()) {
    // y_b [c_out, P] = W [c_out, R] x_b [R, P], all samples in one batched GEMM
    gemm_strided_batched(be, trans::no, trans::no, g.c_out, P, R, w, R, 0, x, P, g.in_sample(), y, P, ys, g.n);
  } else {
    check_workspace(workspace<T>(g), work_size, "ops::conv_forward(cuda)");
    const std::size_t nb = chunk_samples(g);
    for (std::size_t b0 = 0; b0 < g.n; b0 += nb) {
      const std::size_t m = nb < g.n - b0 ? nb : g.n - b0;
      im2col_batched(be, g, m, x + b0 * g.in_sample(), work);  // col [R, m, P]
      // y_b [c_out, P] = W [c_out, R] col_b [R, P], col_b = col + b*P with leading dimension m*P
      gemm_strided_batched(be, trans::no, trans::no, g.c_out, P, R, w, R, 0, work, m * P, P, y + b0 * ys, P, ys, m);
    }
  }
  if (b) conv_bias_forward(be, g.n, g.c_out, P, b_dev, y_dev);
}

// dx [n, c_in, in_h, in_w] = conv^T(dy [n, c_out, out_h, out_w]) with weight w (overwrites dx)
template <class T>
void conv_backward_data(const gpu& be, const conv_geometry& g, dcptr<T> dy_dev,
                        dcptr<T> w_dev, device_ptr<T> dx_dev, device_ptr<T> work_dev,
                        std::size_t work_size) {
  const T* dy = dy_dev.get();
  const T* w = w_dev.get();
  T* dx = dx_dev.get();
  T* work = work_dev.get();
  using namespace conv_cuda_detail;
  if (g.n == 0 || g.in_sample() == 0) return;
  const std::size_t R = g.col_rows(), P = g.col_cols(), ys = g.out_sample();
  if (use_direct(g)) {
    // dx[b, c, h, w] = sum over the taps that read it of w * dy, one thread each
    const std::size_t total = g.n * g.in_sample();
    direct_backward_data_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, dy, w, dx);
    CPDIFF_CUDA_CHECK_LAUNCH();
    return;
  }
  if (g.pointwise()) {
    // dx_b [R, P] = W^T [R, c_out] dy_b [c_out, P], all samples in one batched GEMM
    gemm_strided_batched(be, trans::yes, trans::no, R, P, g.c_out, w, R, 0, dy, P, ys, dx, P, g.in_sample(), g.n);
    return;
  }
  check_workspace(workspace<T>(g), work_size, "ops::conv_backward_data(cuda)");
  const std::size_t nb = chunk_samples(g);
  for (std::size_t b0 = 0; b0 < g.n; b0 += nb) {
    const std::size_t m = nb < g.n - b0 ? nb : g.n - b0;
    // dcol_b [R, P] = W^T [R, c_out] dy_b [c_out, P], into dcol [R, m, P]
    gemm_strided_batched(be, trans::yes, trans::no, R, P, g.c_out, w, R, 0, dy + b0 * ys, P, ys, work, m * P, P, m);
    // dx_b = col2im(dcol_b)
    col2im_batched(be, g, m, work, dx + b0 * g.in_sample());
  }
}

// dw [c_out, c_in, k_h, k_w] += sum_b dy_b col(x_b)^T   (adds, like every parameter gradient)
template <class T>
void conv_backward_weight(const gpu& be, const conv_geometry& g, dcptr<T> x_dev,
                          dcptr<T> dy_dev, device_ptr<T> dw_dev,
                          device_ptr<T> work_dev,
                          std::size_t work_size) {
  const T* x = x_dev.get();
  const T* dy = dy_dev.get();
  T* dw = dw_dev.get();
  T* work = work_dev.get();
  using namespace conv_cuda_detail;
  if (g.n == 0 || g.col_cols() == 0) return;
  const std::size_t R = g.col_rows(), P = g.col_cols(), W = g.weight_size();
  check_workspace(workspace<T>(g), work_size, "ops::conv_backward_weight(cuda)");
  if (use_direct(g)) {
    const std::size_t slices = wgrad_slices(g);
    CPDIFF_CHECK(reinterpret_cast<std::uintptr_t>(work) % alignof(acc_t<T>) == 0, shape_error,
                 "ops::conv_backward_weight(cuda)", "workspace not aligned for ", sizeof(acc_t<T>), "-byte partial sums");
    auto* partial = reinterpret_cast<acc_t<T>*>(work);  // [W, slices]
    CPDIFF_CHECK(W <= cuda_reduce::max_grid, shape_error, "ops::conv_backward_weight(cuda)", "weight of ", W,
                 " elements is too large for the direct kernel (force conv_algorithm::gemm)");
    // partial[wi, s] = sum over slice s of the positions of dy * x under tap wi
    const dim3 grid(static_cast<unsigned>(W), static_cast<unsigned>(slices));
    direct_wgrad_partial_kernel<<<grid, block, 0, be.stream>>>(g, slices, x, dy, partial);
    CPDIFF_CUDA_CHECK_LAUNCH();
    // dw[wi] += sum_s partial[wi, s]
    direct_wgrad_finish_kernel<<<cuda_reduce::grid_for(W, block), block, 0, be.stream>>>(W, slices, partial, dw);
    CPDIFF_CUDA_CHECK_LAUNCH();
    return;
  }
  const std::size_t nb = chunk_samples(g);
  for (std::size_t b0 = 0; b0 < g.n; b0 += nb) {
    const std::size_t m = nb < g.n - b0 ? nb : g.n - b0, mp = m * P;
    T* col = work;          // [R, m, P]
    T* dyt = work + R * mp;  // [c_out, m, P]
    im2col_batched(be, g, m, x + b0 * g.in_sample(), col);
    transpose_samples_kernel<<<cuda_reduce::grid_for(g.c_out * mp, block), block, 0, be.stream>>>(
        m, g.c_out, P, dy + b0 * g.out_sample(), dyt);
    CPDIFF_CUDA_CHECK_LAUNCH();
    // dW [c_out, R] += dy^T [c_out, m*P] col^T [m*P, R]
    gemm(be, trans::no, trans::yes, g.c_out, R, mp, T(1), device_ptr<const T>(dyt), mp, device_ptr<const T>(col), mp, T(1),
         dw_dev, R);
  }
}

}  // namespace cpdiff::ops
