#pragma once
// CPU average-pooling kernels: windowed 2-D average pooling (no padding) and the global average over
// every position of each (sample, channel) row.
#include <algorithm>
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cpu/im2col.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// y [planes, out_h, out_w] = mean of x [planes, in_h, in_w] over each k_h x k_w window
template <class T>
void avg_pool2d_forward(cpu, const pool2d_geometry& g, const T* x, T* y) {
  const T inv = T(1) / T(g.k_h * g.k_w);
  const auto planes = static_cast<std::ptrdiff_t>(g.planes);
#pragma omp parallel for num_threads(team_for(g.planes * g.in_h * g.in_w)) if (team_for(g.planes * g.in_h * g.in_w) > 1)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + static_cast<std::size_t>(pl) * g.in_h * g.in_w;
    T* yp = y + static_cast<std::size_t>(pl) * g.out_h * g.out_w;
    for (std::size_t i = 0; i < g.out_h; ++i)
      for (std::size_t j = 0; j < g.out_w; ++j) {
        T acc = T(0);
        for (std::size_t p = 0; p < g.k_h; ++p) {
          const T* xr = xp + (i * g.stride_h + p) * g.in_w + j * g.stride_w;
          for (std::size_t q = 0; q < g.k_w; ++q) acc += xr[q];
        }
        yp[i * g.out_w + j] = acc * inv;
      }
  }
}

// dx [planes, in_h, in_w] = sum over the windows containing each position of dy / (k_h*k_w) (overwrites dx)
template <class T>
void avg_pool2d_backward(cpu, const pool2d_geometry& g, const T* dy, T* dx) {
  const T inv = T(1) / T(g.k_h * g.k_w);
  const auto planes = static_cast<std::ptrdiff_t>(g.planes);
#pragma omp parallel for num_threads(team_for(g.planes * g.in_h * g.in_w)) if (team_for(g.planes * g.in_h * g.in_w) > 1)
  for (std::ptrdiff_t pl = 0; pl < planes; ++pl) {
    T* xp = dx + static_cast<std::size_t>(pl) * g.in_h * g.in_w;
    const T* yp = dy + static_cast<std::size_t>(pl) * g.out_h * g.out_w;
    std::fill(xp, xp + g.in_h * g.in_w, T(0));
    for (std::size_t i = 0; i < g.out_h; ++i)
      for (std::size_t j = 0; j < g.out_w; ++j) {
        const T v = yp[i * g.out_w + j] * inv;
        for (std::size_t p = 0; p < g.k_h; ++p) {
          T* xr = xp + (i * g.stride_h + p) * g.in_w + j * g.stride_w;
          for (std::size_t q = 0; q < g.k_w; ++q) xr[q] += v;
        }
      }
  }
}

// y [rows] = mean of x [rows, len] along len
template <class T>
void global_avg_pool_forward(cpu, std::size_t rows, std::size_t len, const T* x, T* y) {
  const T inv = T(1) / T(len);
  const auto r_n = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for num_threads(team_for(rows * len)) if (team_for(rows * len) > 1)
  for (std::ptrdiff_t r = 0; r < r_n; ++r) {
    const T* xr = x + static_cast<std::size_t>(r) * len;
    T acc = T(0);
#pragma omp simd reduction(+ : acc)
    for (std::size_t j = 0; j < len; ++j) acc += xr[j];
    y[r] = acc * inv;
  }
}

// dx [rows, len] = dy [rows] / len, broadcast along len (overwrites dx)
template <class T>
void global_avg_pool_backward(cpu, std::size_t rows, std::size_t len, const T* dy, T* dx) {
  const T inv = T(1) / T(len);
  const auto r_n = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for num_threads(team_for(rows * len)) if (team_for(rows * len) > 1)
  for (std::ptrdiff_t r = 0; r < r_n; ++r) {
    T* xr = dx + static_cast<std::size_t>(r) * len;
    std::fill(xr, xr + len, dy[r] * inv);
  }
}

}  // namespace cpdiff::ops
