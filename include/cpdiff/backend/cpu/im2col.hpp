#pragma once
// im2col / col2im on the CPU: one sample of a convolution lowered to a matrix product.
//   x [c_in, in_h, in_w]  <->  col [c_in*k_h*k_w, out_h*out_w]
//   col[(c*k_h + p)*k_w + q, i*out_w + j] = x[c, i*stride_h - pad_h + p*dil_h, j*stride_w - pad_w + q*dil_w]
// (zero where the index falls in the padding). col2im is its adjoint: it sums every column entry back
// into the input position it was read from. Both work on a tile of columns (flattened output positions
// [p0, p1)), so that the column matrix of a long signal is built a cache-sized piece at a time. Both
// parallelise over rows / channels when called outside a parallel region and the work is large; inside
// the per-sample loop of conv.hpp they run on one thread.
#include <algorithm>
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cpu/threads.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

namespace conv_detail {


// The output positions o in [lo, hi) whose input index o*stride + off lies in [0, in); off = q*dil - pad.
struct valid_span {
  std::size_t lo, hi;
};
inline valid_span valid_outputs(std::ptrdiff_t off, std::size_t stride, std::size_t in, std::size_t out) {
  const auto s = static_cast<std::ptrdiff_t>(stride), n = static_cast<std::ptrdiff_t>(in);
  const std::ptrdiff_t lo = off >= 0 ? 0 : (-off + s - 1) / s;  // first o with o*s + off >= 0
  const std::ptrdiff_t hi = n - off <= 0 ? 0 : (n - off - 1) / s + 1;  // one past the last o with o*s + off < in
  const auto clamp = [out](std::ptrdiff_t v) { return std::min(out, static_cast<std::size_t>(std::max<std::ptrdiff_t>(v, 0))); };
  const std::size_t l = clamp(lo), h = clamp(hi);
  return {l, std::max(l, h)};
}

// dst[j] = src[j * stride] for j < n: an im2col row of a strided convolution. Stride 2 (every downsampling
// layer) is spelled out, so that it vectorises with shuffles; the restrict pointers let it vectorise at all
// (the loop inside im2col's lambda ran scalar: 15% of the style autoencoder's step).
template <class T>
inline void gather_strided(const T* __restrict src, T* __restrict dst, std::size_t n, std::size_t stride) {
  if (stride == 2) {
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) dst[j] = src[2 * j];
  } else {
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) dst[j] = src[j * stride];
  }
}
// dst[j * stride] += src[j] for j < n: its adjoint, col2im's (distinct targets for stride >= 1).
template <class T>
inline void scatter_add_strided(const T* __restrict src, T* __restrict dst, std::size_t n, std::size_t stride) {
  if (stride == 2) {
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) dst[2 * j] += src[j];
  } else {
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) dst[j * stride] += src[j];
  }
}

}  // namespace conv_detail

// Calls f(i, ja, jb, d) for each output row i that the flattened output positions [p0, p1) touch, with
// [ja, jb) its columns inside the range and d the offset of (i, ja) in a tile that starts at p0.
template <class F>
void for_each_tile_row(const conv_geometry& g, std::size_t p0, std::size_t p1, F&& f) {
  for (std::size_t i = p0 / g.out_w; i * g.out_w < p1; ++i) {
    const std::size_t row = i * g.out_w;
    const std::size_t ja = p0 > row ? p0 - row : 0, jb = std::min(g.out_w, p1 - row);
    f(i, ja, jb, row + ja - p0);
  }
}

// col [c_in*k_h*k_w, p1 - p0] = columns [p0, p1) of im2col(x [c_in, in_h, in_w]) (a tile of output positions)
template <class T>
void im2col(cpu, const conv_geometry& g, const T* x, T* col, std::size_t p0, std::size_t p1) {
  const std::size_t m = p1 - p0, kk = g.k_h * g.k_w;
  const auto rows = static_cast<std::ptrdiff_t>(g.col_rows());
#pragma omp parallel for num_threads(team_for(g.col_rows() * m)) if (team_for(g.col_rows() * m) > 1)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const std::size_t c = static_cast<std::size_t>(r) / kk, p = (static_cast<std::size_t>(r) / g.k_w) % g.k_h,
                      q = static_cast<std::size_t>(r) % g.k_w;
    const T* xc = x + c * g.in_plane();
    T* dst = col + static_cast<std::size_t>(r) * m;
    const auto off_h = static_cast<std::ptrdiff_t>(p * g.dil_h) - static_cast<std::ptrdiff_t>(g.pad_h);
    const auto off_w = static_cast<std::ptrdiff_t>(q * g.dil_w) - static_cast<std::ptrdiff_t>(g.pad_w);
    const conv_detail::valid_span valid = conv_detail::valid_outputs(off_w, g.stride_w, g.in_w, g.out_w);
    const std::size_t lo = valid.lo, hi = valid.hi;  // not a structured binding: the lambda captures them
    for_each_tile_row(g, p0, p1, [&](std::size_t i, std::size_t ja, std::size_t jb, std::size_t at) {
      T* d = dst + at;  // d[j - ja] is output column j of row i, for j in [ja, jb)
      const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(i * g.stride_h) + off_h;
      const std::size_t a = std::clamp(lo, ja, jb), b = std::clamp(hi, ja, jb);  // columns inside the image
      if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.in_h) || a == b) {
        std::fill(d, d + (jb - ja), T(0));
        return;
      }
      const T* xr = xc + static_cast<std::size_t>(ih) * g.in_w;  // input row ih; column j reads xr[j*stride_w + off_w]
      std::fill(d, d + (a - ja), T(0));
      if (g.stride_w == 1) {
        std::copy(xr + (static_cast<std::ptrdiff_t>(a) + off_w), xr + (static_cast<std::ptrdiff_t>(b) + off_w),
                  d + (a - ja));
      } else {  // d[j - ja] = xr[j * stride + off_w]
        conv_detail::gather_strided(xr + (static_cast<std::ptrdiff_t>(a * g.stride_w) + off_w), d + (a - ja), b - a,
                                    g.stride_w);
      }
      std::fill(d + (b - ja), d + (jb - ja), T(0));
    });
  }
}

// x [c_in, in_h, in_w] += col2im(col [c_in*k_h*k_w, p1 - p0]), the adjoint of im2col on the same tile:
// every column entry is added back into the input position it was read from.
template <class T>
void col2im_add(cpu, const conv_geometry& g, const T* col, T* x, std::size_t p0, std::size_t p1) {
  const std::size_t m = p1 - p0;
  const auto channels = static_cast<std::ptrdiff_t>(g.c_in);
#pragma omp parallel for num_threads(team_for(g.col_rows() * m)) if (team_for(g.col_rows() * m) > 1)
  for (std::ptrdiff_t cc = 0; cc < channels; ++cc) {
    const auto c = static_cast<std::size_t>(cc);
    T* xc = x + c * g.in_plane();
    for (std::size_t p = 0; p < g.k_h; ++p) {
      const auto off_h = static_cast<std::ptrdiff_t>(p * g.dil_h) - static_cast<std::ptrdiff_t>(g.pad_h);
      for (std::size_t q = 0; q < g.k_w; ++q) {
        const auto off_w = static_cast<std::ptrdiff_t>(q * g.dil_w) - static_cast<std::ptrdiff_t>(g.pad_w);
        const conv_detail::valid_span valid = conv_detail::valid_outputs(off_w, g.stride_w, g.in_w, g.out_w);
        const std::size_t lo = valid.lo, hi = valid.hi;  // not a structured binding: the lambda captures them
        const T* src = col + ((c * g.k_h + p) * g.k_w + q) * m;
        for_each_tile_row(g, p0, p1, [&](std::size_t i, std::size_t ja, std::size_t jb, std::size_t at) {
          const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(i * g.stride_h) + off_h;
          const std::size_t a = std::clamp(lo, ja, jb), b = std::clamp(hi, ja, jb);
          if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.in_h) || a == b) return;
          T* xr = xc + static_cast<std::size_t>(ih) * g.in_w;
          const T* s = src + at;  // s[j - ja] is output column j of row i
          if (g.stride_w == 1) {
            T* xs = xr + (static_cast<std::ptrdiff_t>(a) + off_w);  // the input under output column a
            const T* ss = s + (a - ja);
#pragma omp simd
            for (std::size_t j = 0; j < b - a; ++j) xs[j] += ss[j];
          } else {  // xr[j * stride + off_w] += s[j - ja]
            conv_detail::scatter_add_strided(s + (a - ja), xr + (static_cast<std::ptrdiff_t>(a * g.stride_w) + off_w),
                                             b - a, g.stride_w);
          }
        });
      }
    }
  }
}

// The whole sample: col [c_in*k_h*k_w, out_h*out_w] = im2col(x [c_in, in_h, in_w])
template <class T>
void im2col(cpu be, const conv_geometry& g, const T* x, T* col) {
  im2col(be, g, x, col, 0, g.col_cols());
}
// The whole sample: x [c_in, in_h, in_w] = col2im(col [c_in*k_h*k_w, out_h*out_w]) (overwrites x)
template <class T>
void col2im(cpu be, const conv_geometry& g, const T* col, T* x) {
  std::fill(x, x + g.in_sample(), T(0));
  col2im_add(be, g, col, x, 0, g.col_cols());
}

}  // namespace cpdiff::ops
