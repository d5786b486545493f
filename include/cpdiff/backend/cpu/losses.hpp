#pragma once
// CPU kernels for the losses (nn/losses.hpp). Sums are accumulated in double whatever T is, and the
// loss comes back as a double: a NaN / Inf input gives a NaN / Inf loss, never a crash, so the
// training guard that checks the loss sees it.
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// mean_i (pred_i - target_i)^2 over n elements
template <class T>
double mse_forward(cpu, const T* pred, const T* target, std::size_t n) {
  double s = 0;
  const std::ptrdiff_t m = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for reduction(+ : s) num_threads(team_for(m)) if (team_for(m) > 1)
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    s += d * d;
  }
  return s / static_cast<double>(n);
}

// dpred_i = scale * 2 (pred_i - target_i) / n
template <class T>
void mse_backward(cpu, const T* pred, const T* target, T* dpred, std::size_t n, T scale) {
  const T c = scale * T(2) / static_cast<T>(n);
  const std::ptrdiff_t m = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for simd num_threads(team_for(m)) if (parallel: team_for(m) > 1)
  for (std::ptrdiff_t i = 0; i < m; ++i) dpred[i] = c * (pred[i] - target[i]);
}

template <std::integral I>
invalid_label find_invalid_label(cpu, const I* target, std::size_t n, std::size_t classes) {
  for (std::size_t i = 0; i < n; ++i)
    if (std::cmp_less(target[i], 0) || !std::cmp_less(target[i], classes))
      return {static_cast<std::ptrdiff_t>(i), static_cast<long long>(target[i])};
  return {};
}

// Cross-entropy with integer targets, through a numerically stable log-softmax:
//   lse_i = m_i + log sum_j exp(x_ij - m_i),  m_i = max_j x_ij
//   prob [N, C] = exp(x - lse)   (kept for backward)
//   returns mean_i (lse_i - x[i, t_i])
// Labels must already be checked (find_invalid_label).
template <class T, std::integral I>
double cross_entropy_forward(cpu, const T* logits, const I* target, T* prob, std::size_t N, std::size_t C) {
  double s = 0;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(N);
#pragma omp parallel for reduction(+ : s) num_threads(team_for(N * C)) if (team_for(N * C) > 1)
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const T* x = logits + static_cast<std::size_t>(r) * C;
    T* p = prob + static_cast<std::size_t>(r) * C;
    T m = x[0];  // a NaN in x[0] stays NaN: every later comparison is false
    for (std::size_t j = 1; j < C; ++j)
      if (x[j] > m) m = x[j];
    T z = 0;
    for (std::size_t j = 0; j < C; ++j) z += std::exp(x[j] - m);
    const T lse = m + std::log(z);
    for (std::size_t j = 0; j < C; ++j) p[j] = std::exp(x[j] - lse);
    s += static_cast<double>(lse - x[static_cast<std::size_t>(target[r])]);
  }
  return s / static_cast<double>(N);
}

// dlogits [N, C] = scale * (prob - onehot(target)) / N
template <class T, std::integral I>
void cross_entropy_backward(cpu, const T* prob, const I* target, T* dlogits, std::size_t N, std::size_t C, T scale) {
  const T c = scale / static_cast<T>(N);
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(N);
#pragma omp parallel for num_threads(team_for(N * C)) if (team_for(N * C) > 1)
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const std::size_t o = static_cast<std::size_t>(r) * C;
    for (std::size_t j = 0; j < C; ++j) dlogits[o + j] = c * prob[o + j];
    dlogits[o + static_cast<std::size_t>(target[r])] -= c;
  }
}

}  // namespace cpdiff::ops
