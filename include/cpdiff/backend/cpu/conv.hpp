#pragma once
// CPU convolution kernels (1-D and 2-D, see conv_geometry.hpp) by im2col + GEMM, per sample:
//   forward       y_b [c_out, P] = W [c_out, R] col(x_b) [R, P] (+ b)          R = c_in*k_h*k_w, P = out_h*out_w
//   data grad     dx_b = col2im(W^T [R, c_out] dy_b [c_out, P])
//   weight grad   dW [c_out, R] += sum_b dy_b [c_out, P] col(x_b)^T [P, R]
// each taken a tile of output positions (columns of col) at a time.
// The transposed convolution is the adjoint pair: its forward is conv_backward_data, its data gradient
// conv_forward (nn/conv_transpose1d.hpp). 1-D kernels of 3 at stride 1 with enough channels go to Winograd F(4, 3)
// instead (winograd.hpp), with the same scratch contract.
//
// Threads: with enough samples each thread takes whole samples and its own slice of the workspace;
// with a few large samples the samples run in turn and the threads go to Eigen's GEMM and to im2col.
// The workspace is scratch the caller owns (a layer member, so nothing is allocated once warm); its size
// comes from conv_workspace_size and is re-checked here, since the thread count may change in between.
#include <algorithm>
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cpu/blas.hpp"
#include "cpdiff/backend/cpu/im2col.hpp"
#include "cpdiff/backend/cpu/winograd.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"

namespace cpdiff::ops {

namespace conv_detail {

// Output positions per column tile: a tile col [R, tile] of about 2^19 elements stays in the L2 cache
// between im2col and the GEMM, where the whole column matrix of a long signal (R*P: 75 MB for 256
// channels x kernel 5 x length 14,745 in float) would stream through memory twice. At least 256 columns
// so that the GEMM stays efficient (measured: narrower tiles slow the 256-channel layers down), at most
// 4096 so that few-channel layers still tile.
inline std::size_t col_tile(const conv_geometry& g) {
  return std::min(g.col_cols(), std::clamp<std::size_t>((std::size_t(1) << 19) / g.col_rows(), 256, 4096));
}
// Elements of one column tile (none for a 1x1 convolution, which multiplies x itself).
inline std::size_t col_elements(const conv_geometry& g) {
  return g.pointwise() ? 0 : g.col_rows() * col_tile(g);
}

// Threads over the batch: none for a small batch of small samples (waking threads costs more); all of
// them when there are enough samples or each is small; else none (a few large samples in turn, the GEMM
// and im2col taking the threads).
inline std::size_t batch_threads(const conv_geometry& g) {
  const auto t = static_cast<std::size_t>(max_threads());
  const double flops = 2.0 * double(g.c_out) * double(g.col_rows()) * double(g.col_cols());  // per sample
  if (t <= 1 || g.n <= 1 || flops * double(g.n) < double(1 << 18)) return 1;
  return (g.n >= t || flops < double(1 << 22)) ? std::min(g.n, t) : 1;
}
// Scratch for `threads` threads: a column tile each (none when pointwise) and, when several threads
// share the weight gradient, a partial dW each.
inline std::size_t workspace_for(const conv_geometry& g, std::size_t threads) {
  return threads * col_elements(g) + (threads > 1 ? threads * g.weight_size() : 0);
}
// The most threads (up to batch_threads) whose scratch fits in work_size elements.
inline std::size_t fit_threads(const conv_geometry& g, std::size_t work_size, const char* where) {
  std::size_t t = batch_threads(g);
  while (t > 1 && workspace_for(g, t) > work_size) --t;
  CPDIFF_CHECK(workspace_for(g, t) <= work_size, shape_error, where, "workspace of ", work_size,
               " elements, need ", workspace_for(g, t), " (use conv_workspace_size)");
  return t;
}

// Winograd's threads (up to winograd::threads) whose scratch fits in work_size elements.
inline std::size_t fit_winograd_threads(const conv_geometry& g, std::size_t work_size, const char* where) {
  std::size_t t = winograd::threads(g);
  while (t > 1 && winograd::workspace(g, t) > work_size) --t;
  CPDIFF_CHECK(winograd::workspace(g, t) <= work_size, shape_error, where, "workspace of ", work_size,
               " elements, need ", winograd::workspace(g, t), " (use conv_workspace_size)");
  return t;
}

}  // namespace conv_detail

// Elements of scratch the kernels below need for geometry g.
inline std::size_t conv_workspace_size(cpu, const conv_geometry& g) {
  if (winograd::applies(g)) return winograd::workspace(g, winograd::threads(g));
  return conv_detail::workspace_for(g, conv_detail::batch_threads(g));
}

// y [n, c_out, out_h, out_w] = conv(x [n, c_in, in_h, in_w], w [c_out, c_in, k_h, k_w]) + b [c_out] (b may be null)
template <class T>
void conv_forward(cpu, const conv_geometry& g, const T* x, const T* w, const T* b, T* y, T* work,
                  std::size_t work_size) {
  if (winograd::applies(g))  // y = AT [(G w) (BT x)] per tile of 4 outputs (+ b)
    return winograd::forward(g, x, w, b, y, work, conv_detail::fit_winograd_threads(g, work_size, "ops::conv_forward"));
  const std::size_t nt = conv_detail::fit_threads(g, work_size, "ops::conv_forward");
  const std::size_t R = g.col_rows(), P = g.col_cols(), col_n = conv_detail::col_elements(g);
  const std::size_t tile = conv_detail::col_tile(g);
  const auto n = static_cast<std::ptrdiff_t>(g.n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const T* xb = x + static_cast<std::size_t>(s) * g.in_sample();
    T* yb = y + static_cast<std::size_t>(s) * g.out_sample();
    T beta = T(0);
    if (b) {  // y_b starts as the bias, broadcast along P
      for (std::size_t o = 0; o < g.c_out; ++o) std::fill(yb + o * P, yb + (o + 1) * P, b[o]);
      beta = T(1);
    }
    if (g.pointwise()) {  // y_b [c_out, P] = W [c_out, c_in] x_b [c_in, P] + beta * y_b
      gemm(cpu{}, trans::no, trans::no, g.c_out, P, R, T(1), w, R, xb, P, beta, yb, P);
      continue;
    }
    T* col = work + static_cast<std::size_t>(thread_num()) * col_n;
    for (std::size_t p0 = 0; p0 < P; p0 += tile) {
      const std::size_t m = std::min(tile, P - p0);
      im2col(cpu{}, g, xb, col, p0, p0 + m);  // col [R, m]: output positions [p0, p0 + m)
      // y_b [c_out, p0 : p0 + m] = W [c_out, R] col [R, m] + beta * y_b
      gemm(cpu{}, trans::no, trans::no, g.c_out, m, R, T(1), w, R, col, m, beta, yb + p0, P);
    }
  }
}

// dx [n, c_in, in_h, in_w] = conv^T(dy [n, c_out, out_h, out_w]) with weight w (overwrites dx)
template <class T>
void conv_backward_data(cpu, const conv_geometry& g, const T* dy, const T* w, T* dx, T* work,
                        std::size_t work_size) {
  if (winograd::applies(g))  // dx = the correlation of dy with the flipped, transposed kernel
    return winograd::backward_data(g, dy, w, dx, work,
                                   conv_detail::fit_winograd_threads(g, work_size, "ops::conv_backward_data"));
  const std::size_t nt = conv_detail::fit_threads(g, work_size, "ops::conv_backward_data");
  const std::size_t R = g.col_rows(), P = g.col_cols(), col_n = conv_detail::col_elements(g);
  const std::size_t tile = conv_detail::col_tile(g);
  const auto n = static_cast<std::ptrdiff_t>(g.n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const T* dyb = dy + static_cast<std::size_t>(s) * g.out_sample();
    T* dxb = dx + static_cast<std::size_t>(s) * g.in_sample();
    if (g.pointwise()) {  // dx_b [c_in, P] = W^T [c_in, c_out] dy_b [c_out, P]
      gemm(cpu{}, trans::yes, trans::no, R, P, g.c_out, T(1), w, R, dyb, P, T(0), dxb, P);
      continue;
    }
    T* dcol = work + static_cast<std::size_t>(thread_num()) * col_n;
    std::fill(dxb, dxb + g.in_sample(), T(0));
    for (std::size_t p0 = 0; p0 < P; p0 += tile) {
      const std::size_t m = std::min(tile, P - p0);
      // dcol [R, m] = W^T [R, c_out] dy_b [c_out, p0 : p0 + m]
      gemm(cpu{}, trans::yes, trans::no, R, m, g.c_out, T(1), w, R, dyb + p0, P, T(0), dcol, m);
      // dx_b [c_in, in_h, in_w] += col2im(dcol)
      col2im_add(cpu{}, g, dcol, dxb, p0, p0 + m);
    }
  }
}

// dw [c_out, c_in, k_h, k_w] += sum_b dy_b col(x_b)^T   (adds, like every parameter gradient)
template <class T>
void conv_backward_weight(cpu, const conv_geometry& g, const T* x, const T* dy, T* dw, T* work,
                          std::size_t work_size) {
  if (winograd::applies(g))  // dw += G^T [sum (A dy) (BT x)^T]
    return winograd::backward_weight(g, x, dy, dw, work,
                                     conv_detail::fit_winograd_threads(g, work_size, "ops::conv_backward_weight"));
  const std::size_t nt = conv_detail::fit_threads(g, work_size, "ops::conv_backward_weight");
  const std::size_t R = g.col_rows(), P = g.col_cols(), col_n = conv_detail::col_elements(g), W = g.weight_size();
  const std::size_t tile = conv_detail::col_tile(g);
  T* partial = work + nt * col_n;  // [nt, W] when nt > 1: each thread's share of dW
  const auto n = static_cast<std::ptrdiff_t>(g.n);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const std::size_t t = static_cast<std::size_t>(thread_num());
    T* dw_t = nt > 1 ? partial + t * W : dw;
    if (nt > 1) std::fill(dw_t, dw_t + W, T(0));
#pragma omp for schedule(static)
    for (std::ptrdiff_t s = 0; s < n; ++s) {
      const T* xb = x + static_cast<std::size_t>(s) * g.in_sample();
      const T* dyb = dy + static_cast<std::size_t>(s) * g.out_sample();
      if (g.pointwise()) {  // dW_t [c_out, c_in] += dy_b [c_out, P] x_b^T [P, c_in]
        gemm(cpu{}, trans::no, trans::yes, g.c_out, R, P, T(1), dyb, P, xb, P, T(1), dw_t, R);
        continue;
      }
      T* col = work + t * col_n;
      for (std::size_t p0 = 0; p0 < P; p0 += tile) {
        const std::size_t m = std::min(tile, P - p0);
        im2col(cpu{}, g, xb, col, p0, p0 + m);  // col [R, m]
        // dW_t [c_out, R] += dy_b [c_out, p0 : p0 + m] col^T [m, R]
        gemm(cpu{}, trans::no, trans::yes, g.c_out, R, m, T(1), dyb + p0, P, col, m, T(1), dw_t, R);
      }
    }
  }
  if (nt > 1) {
    // dW += sum_t dW_t, in thread order (deterministic for a given thread count)
    const auto w_n = static_cast<std::ptrdiff_t>(W);
#pragma omp parallel for num_threads(team_for(W * nt)) if (team_for(W * nt) > 1)
    for (std::ptrdiff_t i = 0; i < w_n; ++i) {
      T acc = T(0);
      for (std::size_t t = 0; t < nt; ++t) acc += partial[t * W + static_cast<std::size_t>(i)];
      dw[i] += acc;
    }
  }
}

// y [n, c, plane] += b [c]   (broadcast along the plane)
template <class T>
void conv_bias_forward(cpu, std::size_t n, std::size_t c, std::size_t plane, const T* b, T* y) {
  const auto rows = static_cast<std::ptrdiff_t>(n * c);
#pragma omp parallel for num_threads(team_for(n * c * plane)) if (team_for(n * c * plane) > 1)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    T* yr = y + static_cast<std::size_t>(r) * plane;
    const T v = b[static_cast<std::size_t>(r) % c];
#pragma omp simd
    for (std::size_t j = 0; j < plane; ++j) yr[j] += v;
  }
}

// db [c] += sum over n and the plane of dy [n, c, plane]
template <class T>
void conv_bias_backward(cpu, std::size_t n, std::size_t c, std::size_t plane, const T* dy, T* db) {
  const auto channels = static_cast<std::ptrdiff_t>(c);
#pragma omp parallel for num_threads(team_for(n * c * plane)) if (team_for(n * c * plane) > 1)
  for (std::ptrdiff_t o = 0; o < channels; ++o) {
    T acc = T(0);
    for (std::size_t s = 0; s < n; ++s) {
      const T* r = dy + (s * c + static_cast<std::size_t>(o)) * plane;
#pragma omp simd reduction(+ : acc)
      for (std::size_t j = 0; j < plane; ++j) acc += r[j];
    }
    db[o] += acc;
  }
}

}  // namespace cpdiff::ops
