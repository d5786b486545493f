#pragma once
// Winograd F(4, 3) for the CPU backend's 1-D convolutions of kernel 3, stride 1, dilation 1 and padding <= 2 (the
// p-diff U-Net's): 4 outputs of a 3-tap filter from 6 products instead of 12, so each of the three convolution
// products (forward, data gradient, weight gradient) becomes 6 GEMMs of 1/4 the columns: half the multiply-adds
// of im2col + GEMM (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016; points 0, +-1, +-2, inf).
//
// One tile: inputs d [6] at positions 4t - pad + i, filter g [3], outputs y [4] at 4t + r:
//   y_r = sum_j g_j d_{r+j} = sum_xi AT[r][xi] (G g)_xi (BT d)_xi
// Per sample, with T = ceil(P / 4) tiles of the P outputs:
//   V  [6, c_in, T]      = BT d                (input transform; zero outside the signal)
//   U  [6, c_out, c_in]  = G w                 (weight transform, once per call)
//   M  [6, c_out, T]     = U_xi V_xi           (6 GEMMs)
//   y  [c_out, P]        = AT M (+ b)          (output transform)
// data gradient: the same correlation of dy with the kernel flipped and transposed, w'[c, o, j] = w[o, c, 2 - j],
// and padding 2 - pad (so pad <= 2). Weight gradient, from the same identity summed against e_r = dy[4t + r]:
//   E  [6, c_out, T] = A e,   dU [6, c_out, c_in] = sum_samples E_xi V_xi^T,   dw [c_out, c_in, j] += sum_xi G[xi][j] dU_xi
// Rounding: the transforms weigh inputs by up to 5 and outputs by up to 8, so float results carry a little more
// error than im2col's (tests/nn/test_conv1d.cpp, 256 -> 128 channels, length 117: worst error 1.8e-6 of the largest
// magnitude for y and 1.6e-6 for dx, against 1.1e-6 and 3.1e-7 with im2col + GEMM); double parity with PyTorch
// holds at 1e-10 as before.
#include <algorithm>
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cpu/blas.hpp"
#include "cpdiff/backend/cpu/threads.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops::winograd {

inline constexpr std::size_t alpha = 6, tile = 4;  // points per tile, outputs per tile

// The transforms (the input and output ones are written out in input_transform / output_transform /
// gradient_transform below, their zeros skipped):
//   BT [6, 6] = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
//                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
//   AT [4, 6] = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
// G [6, 3]: the filter transform
inline constexpr double G[alpha][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                       {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

// Whether g is a convolution this file computes: 1-D, kernel 3, stride 1, dilation 1, padding <= 2; forced by
// conv_algorithm::winograd, or chosen (automatic) when both channel counts are at least 32 (below that the GEMMs are
// too thin to gain what the transforms cost) and the output holds at least 16 positions.
inline bool applies(const conv_geometry& g) {
  const bool shape_ok = g.in_h == 1 && g.out_h == 1 && g.k_h == 1 && g.k_w == 3 && g.stride_w == 1 && g.dil_w == 1 &&
                        g.pad_w <= 2 && g.out_w > 0;
  if (!shape_ok || g.algo == conv_algorithm::gemm || g.algo == conv_algorithm::direct) return false;
  return g.algo == conv_algorithm::winograd || (g.c_in >= 32 && g.c_out >= 32 && g.out_w >= 16);
}

inline std::size_t tiles(std::size_t positions) { return (positions + tile - 1) / tile; }

// Threads over the batch (each a sample at a time with its own V and M), as conv.hpp's batch_threads: all when
// there are at least as many samples, else one (and Eigen's threads inside the GEMMs).
inline std::size_t threads(const conv_geometry& g) {
  const auto t = static_cast<std::size_t>(max_threads());
  return (t > 1 && g.n >= t) ? t : 1;
}

// Scratch elements for `nt` threads: U (or the summed dU) [6, c_out, c_in], then per thread V and M (E) for the
// longer of the two signals, and a partial dU when threads share the weight gradient.
inline std::size_t workspace(const conv_geometry& g, std::size_t nt) {
  const std::size_t u = alpha * g.c_out * g.c_in, t = tiles(std::max(g.in_w, g.out_w));
  return u + nt * (alpha * (g.c_in + g.c_out) * t + (nt > 1 ? u : 0));
}

namespace detail {

// V [6, c, T] = BT d: the tiles of x [c, len] (zero outside) starting at 4t - pad.
template <class T>
void input_transform(const T* x, std::size_t c, std::size_t len, std::ptrdiff_t pad, std::size_t nt_tiles, T* v) {
  const std::size_t plane = c * nt_tiles;
  for (std::size_t ch = 0; ch < c; ++ch) {
    const T* xr = x + ch * len;
    T* vr = v + ch * nt_tiles;
    for (std::size_t t = 0; t < nt_tiles; ++t) {
      const std::ptrdiff_t s = static_cast<std::ptrdiff_t>(t * tile) - pad;
      T d[alpha];
      if (s >= 0 && s + std::ptrdiff_t(alpha) <= std::ptrdiff_t(len)) {
        for (std::size_t i = 0; i < alpha; ++i) d[i] = xr[std::size_t(s) + i];
      } else {
        for (std::size_t i = 0; i < alpha; ++i) {
          const std::ptrdiff_t p = s + std::ptrdiff_t(i);
          d[i] = (p >= 0 && p < std::ptrdiff_t(len)) ? xr[p] : T(0);
        }
      }
      // BT d, its zeros skipped
      vr[0 * plane + t] = T(4) * d[0] - T(5) * d[2] + d[4];
      vr[1 * plane + t] = -T(4) * (d[1] + d[2]) + d[3] + d[4];
      vr[2 * plane + t] = T(4) * (d[1] - d[2]) - d[3] + d[4];
      vr[3 * plane + t] = T(2) * (d[3] - d[1]) - d[2] + d[4];
      vr[4 * plane + t] = T(2) * (d[1] - d[3]) - d[2] + d[4];
      vr[5 * plane + t] = T(4) * d[1] - T(5) * d[3] + d[5];
    }
  }
}

// U [6, rows, cols] = G w, w given by tap(r, c, j).
template <class T, class Tap>
void filter_transform(std::size_t rows, std::size_t cols, Tap&& tap, T* u) {
  const std::size_t plane = rows * cols;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double w0 = tap(r, c, 0), w1 = tap(r, c, 1), w2 = tap(r, c, 2);
      for (std::size_t xi = 0; xi < alpha; ++xi)
        u[xi * plane + r * cols + c] = static_cast<T>(G[xi][0] * w0 + G[xi][1] * w1 + G[xi][2] * w2);
    }
}

// y [c, P] = AT M (+ b): M [6, c, T]
template <class T>
void output_transform(const T* m, std::size_t c, std::size_t positions, std::size_t nt_tiles, const T* b, T* y) {
  const std::size_t plane = c * nt_tiles;
  for (std::size_t ch = 0; ch < c; ++ch) {
    const T* mr = m + ch * nt_tiles;
    T* yr = y + ch * positions;
    const T bias = b ? b[ch] : T(0);
    for (std::size_t t = 0; t < nt_tiles; ++t) {
      const T m0 = mr[t], m1 = mr[plane + t], m2 = mr[2 * plane + t], m3 = mr[3 * plane + t], m4 = mr[4 * plane + t],
              m5 = mr[5 * plane + t];
      const T out[tile] = {m0 + m1 + m2 + m3 + m4, m1 - m2 + T(2) * (m3 - m4), m1 + m2 + T(4) * (m3 + m4),
                           m1 - m2 + T(8) * (m3 - m4) + m5};
      const std::size_t p0 = t * tile, k = std::min(tile, positions - p0);
      for (std::size_t r = 0; r < k; ++r) yr[p0 + r] = out[r] + bias;
    }
  }
}

// E [6, c, T] = A e: e the tiles of dy [c, P] (zero past P)
template <class T>
void gradient_transform(const T* dy, std::size_t c, std::size_t positions, std::size_t nt_tiles, T* e) {
  const std::size_t plane = c * nt_tiles;
  for (std::size_t ch = 0; ch < c; ++ch) {
    const T* dr = dy + ch * positions;
    T* er = e + ch * nt_tiles;
    for (std::size_t t = 0; t < nt_tiles; ++t) {
      const std::size_t p0 = t * tile;
      T g[tile] = {};
      for (std::size_t r = 0; r < std::min(tile, positions - p0); ++r) g[r] = dr[p0 + r];
      // (A e)_xi = sum_r AT[r][xi] e_r
      er[t] = g[0];
      er[plane + t] = g[0] + g[1] + g[2] + g[3];
      er[2 * plane + t] = g[0] - g[1] + g[2] - g[3];
      er[3 * plane + t] = g[0] + T(2) * g[1] + T(4) * g[2] + T(8) * g[3];
      er[4 * plane + t] = g[0] - T(2) * g[1] + T(4) * g[2] - T(8) * g[3];
      er[5 * plane + t] = g[3];
    }
  }
}

// One sample's correlation out [co, P] = sum over ci and 3 taps of U (transformed) with in [ci, len] at padding pad.
template <class T>
void correlate_sample(const T* in, std::size_t ci, std::size_t len, std::ptrdiff_t pad, const T* u, std::size_t co,
                      std::size_t positions, const T* b, T* v, T* m, T* out) {
  const std::size_t nt_tiles = tiles(positions);
  input_transform(in, ci, len, pad, nt_tiles, v);
  // M_xi [co, T] = U_xi [co, ci] V_xi [ci, T]
  for (std::size_t xi = 0; xi < alpha; ++xi)
    gemm(cpu{}, trans::no, trans::no, co, nt_tiles, ci, T(1), u + xi * co * ci, ci, v + xi * ci * nt_tiles, nt_tiles,
         T(0), m + xi * co * nt_tiles, nt_tiles);
  output_transform(m, co, positions, nt_tiles, b, out);
}

// out [n, co, P] from in [n, ci, len] with the transformed filter u, the samples over nt threads (scratch: V and M
// of each thread, as workspace() lays them out after U).
template <class T>
void correlate(std::size_t n, const T* in, std::size_t ci, std::size_t len, std::ptrdiff_t pad, const T* u,
               std::size_t co, std::size_t positions, const T* b, T* out, T* scratch, std::size_t per_thread,
               std::size_t nt) {
  const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (std::ptrdiff_t s = 0; s < count; ++s) {
    T* v = scratch + static_cast<std::size_t>(thread_num()) * per_thread;
    T* m = v + alpha * ci * tiles(positions);
    correlate_sample(in + std::size_t(s) * ci * len, ci, len, pad, u, co, positions, b, v, m,
                     out + std::size_t(s) * co * positions);
  }
}

inline std::size_t per_thread(const conv_geometry& g, std::size_t nt) {
  return alpha * (g.c_in + g.c_out) * tiles(std::max(g.in_w, g.out_w)) + (nt > 1 ? alpha * g.c_out * g.c_in : 0);
}

}  // namespace detail

// y [n, c_out, P] = conv(x [n, c_in, L], w [c_out, c_in, 3]) + b   (b may be null)
template <class T>
void forward(const conv_geometry& g, const T* x, const T* w, const T* b, T* y, T* work, std::size_t nt) {
  const std::size_t ci = g.c_in, co = g.c_out;
  T* u = work;  // U [6, c_out, c_in] = G w
  detail::filter_transform<T>(co, ci, [&](std::size_t o, std::size_t c, std::size_t j) { return double(w[(o * ci + c) * 3 + j]); }, u);
  detail::correlate(g.n, x, ci, g.in_w, std::ptrdiff_t(g.pad_w), u, co, g.out_w, b, y, work + alpha * co * ci,
                    detail::per_thread(g, nt), nt);
}

// dx [n, c_in, L] = conv^T(dy [n, c_out, P]): the correlation of dy with w'[c, o, j] = w[o, c, 2 - j] at padding 2 - pad
template <class T>
void backward_data(const conv_geometry& g, const T* dy, const T* w, T* dx, T* work, std::size_t nt) {
  const std::size_t ci = g.c_in, co = g.c_out;
  T* u = work;  // U' [6, c_in, c_out] = G w'
  detail::filter_transform<T>(ci, co, [&](std::size_t c, std::size_t o, std::size_t j) { return double(w[(o * ci + c) * 3 + 2 - j]); }, u);
  detail::correlate(g.n, dy, co, g.out_w, std::ptrdiff_t(2 - g.pad_w), u, ci, g.in_w, static_cast<const T*>(nullptr), dx,
                    work + alpha * co * ci, detail::per_thread(g, nt), nt);
}

// dw [c_out, c_in, 3] += sum over samples and tiles (adds, like every parameter gradient)
template <class T>
void backward_weight(const conv_geometry& g, const T* x, const T* dy, T* dw, T* work, std::size_t nt) {
  const std::size_t ci = g.c_in, co = g.c_out, u_n = alpha * co * ci, nt_tiles = tiles(g.out_w);
  const std::size_t per = detail::per_thread(g, nt);
  // dU [6, c_out, c_in]: one thread's in the shared region; with several, each thread's after its V and E
  const auto du_of = [&](std::size_t th) { return nt > 1 ? work + u_n + th * per + alpha * (ci + co) * nt_tiles : work; };
  const auto count = static_cast<std::ptrdiff_t>(g.n);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const std::size_t th = static_cast<std::size_t>(thread_num());
    T* v = work + u_n + th * per;      // V [6, c_in, T]
    T* e = v + alpha * ci * nt_tiles;  // E [6, c_out, T]
    T* du = du_of(th);
    std::fill(du, du + u_n, T(0));
#pragma omp for schedule(static)
    for (std::ptrdiff_t s = 0; s < count; ++s) {
      detail::input_transform(x + std::size_t(s) * ci * g.in_w, ci, g.in_w, std::ptrdiff_t(g.pad_w), nt_tiles, v);
      detail::gradient_transform(dy + std::size_t(s) * co * g.out_w, co, g.out_w, nt_tiles, e);
      // dU_xi [co, ci] += E_xi [co, T] V_xi^T [T, ci]
      for (std::size_t xi = 0; xi < alpha; ++xi)
        gemm(cpu{}, trans::no, trans::yes, co, ci, nt_tiles, T(1), e + xi * co * nt_tiles, nt_tiles,
             v + xi * ci * nt_tiles, nt_tiles, T(1), du + xi * co * ci, ci);
    }
  }
  // dw [o, c, j] += sum_xi G[xi][j] dU_xi [o, c], the threads' dU summed in thread order (deterministic)
  const std::size_t plane = co * ci;
  const auto planes = static_cast<std::ptrdiff_t>(plane);
#pragma omp parallel for num_threads(team_for(u_n * nt)) if (team_for(u_n * nt) > 1)
  for (std::ptrdiff_t i = 0; i < planes; ++i) {
    double d[alpha] = {};
    for (std::size_t th = 0; th < nt; ++th)
      for (std::size_t xi = 0; xi < alpha; ++xi) d[xi] += double(du_of(th)[xi * plane + std::size_t(i)]);
    for (std::size_t j = 0; j < 3; ++j) {
      double acc = 0;
      for (std::size_t xi = 0; xi < alpha; ++xi) acc += G[xi][j] * d[xi];
      dw[std::size_t(i) * 3 + j] += static_cast<T>(acc);
    }
  }
}

}  // namespace cpdiff::ops::winograd
