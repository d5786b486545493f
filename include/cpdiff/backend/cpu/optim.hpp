#pragma once
// CPU optimiser kernels: one pass over a contiguous range [0, n) of the flat parameter, gradient and
// state buffers (optim/ calls them once per merged range of trainable parameters). Each kernel is the
// element-wise update of one optimiser, written in PyTorch's order of operations so that float64 runs
// match torch.optim to rounding. Scalars (lr, bias corrections) are computed by the caller once per step.
#include <cmath>
#include <cstddef>
#include <utility>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// AdamW (torch.optim.AdamW), for each i:
//   p  = p * (1 - lr * wd)                                   decoupled weight decay
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)          bc_k = 1 - beta_k^step
template <class T>
void adamw_update(cpu, T* p, const T* g, T* m, T* v, std::size_t n, T lr, T beta1, T beta2, T eps,
                  T weight_decay, T bias_correction1, T bias_correction2) {
  const T decay = T(1) - lr * weight_decay;
  const T step_size = lr / bias_correction1;
  const T bc2_sqrt = std::sqrt(bias_correction2);
  const T one_minus_b1 = T(1) - beta1, one_minus_b2 = T(1) - beta2;
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for simd num_threads(team_for(len)) if (parallel: team_for(len) > 1)
  for (std::ptrdiff_t i = 0; i < len; ++i) {
    const T gi = g[i];
    const T mi = beta1 * m[i] + one_minus_b1 * gi;
    const T vi = beta2 * v[i] + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
}

// SGD with momentum (torch.optim.SGD), for each i:
//   d   = g + wd * p                                         (wd != 0)
//   buf = first ? d : momentum * buf + (1 - dampening) * d   (momentum != 0; buf may be null otherwise)
//   d   = nesterov ? d + momentum * buf : buf
//   p  -= lr * d
template <class T>
void sgd_update(cpu, T* p, const T* g, T* buf, std::size_t n, T lr, T momentum, T dampening, T weight_decay,
                bool nesterov, bool first_step) {
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
  const bool use_momentum = momentum != T(0), use_decay = weight_decay != T(0);
  const T keep = T(1) - dampening;
#pragma omp parallel for simd num_threads(team_for(len)) if (parallel: team_for(len) > 1)
  for (std::ptrdiff_t i = 0; i < len; ++i) {
    T d = use_decay ? g[i] + weight_decay * p[i] : g[i];
    if (use_momentum) {
      const T b = first_step ? d : momentum * buf[i] + keep * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
  }
}

// Exponential moving average: shadow = decay * shadow + (1 - decay) * p
template <class T>
void ema_update(cpu, T* shadow, const T* p, std::size_t n, T decay) {
  const T rest = T(1) - decay;
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for simd num_threads(team_for(len)) if (parallel: team_for(len) > 1)
  for (std::ptrdiff_t i = 0; i < len; ++i) shadow[i] = decay * shadow[i] + rest * p[i];
}

// Exchanges a[0, n) and b[0, n) (EMA swap_in / swap_out).
template <class T>
void swap_buffers(cpu, T* a, T* b, std::size_t n) {
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for simd num_threads(team_for(len)) if (parallel: team_for(len) > 1)
  for (std::ptrdiff_t i = 0; i < len; ++i) {
    const T t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
}

}  // namespace cpdiff::ops
