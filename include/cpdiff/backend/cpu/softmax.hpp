#pragma once
// CPU row softmax: y = softmax(x) along the last axis of x [rows, n], and its backward.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "cpdiff/backend/cpu/im2col.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// y[r, j] = exp(x[r, j] - max_j x[r, :]) / sum_j exp(x[r, j] - max_j x[r, :])   (accumulated in double)
template <class T>
void softmax_rows_forward(cpu, std::size_t rows, std::size_t n, const T* x, T* y) {
  const auto r_n = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for num_threads(team_for(rows * n)) if (team_for(rows * n) > 1)
  for (std::ptrdiff_t r = 0; r < r_n; ++r) {
    const T* xr = x + static_cast<std::size_t>(r) * n;
    T* yr = y + static_cast<std::size_t>(r) * n;
    const T peak = *std::max_element(xr, xr + n);
    double total = 0;
    for (std::size_t j = 0; j < n; ++j) total += (yr[j] = std::exp(xr[j] - peak));
    const T inv = T(1.0 / total);
    for (std::size_t j = 0; j < n; ++j) yr[j] *= inv;
  }
}

// dx[r, j] = y[r, j] (dy[r, j] - sum_k dy[r, k] y[r, k])   (overwrites dx)
template <class T>
void softmax_rows_backward(cpu, std::size_t rows, std::size_t n, const T* y, const T* dy, T* dx) {
  const auto r_n = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for num_threads(team_for(rows * n)) if (team_for(rows * n) > 1)
  for (std::ptrdiff_t r = 0; r < r_n; ++r) {
    const std::size_t o = static_cast<std::size_t>(r) * n;
    double dot = 0;
    for (std::size_t j = 0; j < n; ++j) dot += double(dy[o + j]) * y[o + j];
    for (std::size_t j = 0; j < n; ++j) dx[o + j] = y[o + j] * (dy[o + j] - T(dot));
  }
}

}  // namespace cpdiff::ops
