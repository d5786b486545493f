#pragma once
// Gradient clipping and the gradient half of the training guard, over the trainable entries only
// (frozen entries' gradients neither count towards the norm nor get scaled).
//   const T norm = optim::clip_grad_norm(ps, T(1));   // torch.nn.utils.clip_grad_norm_(params, 1.0)
//   if (!optim::grads_finite(ps)) ...                  // skip the step / stop with the step number
#include <cmath>
#include <cstddef>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/trainable_ranges.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::optim {

// Global L2 norm of the trainable gradients, sqrt(sum_i g_i^2), accumulated in double.
template <class T, class B>
T grad_norm(const parameter_store<T, B>& ps) {
  const auto g = ps.grads();
  double s = 0;
  for_each_trainable_range(ps, [&](std::size_t offset, std::size_t length) {
    s += sum_squares(ps.backend(), g.range(offset, length));
  });
  return static_cast<T>(std::sqrt(s));
}

// torch.nn.utils.clip_grad_norm_ (norm_type 2): when the global norm exceeds max_norm, scales every
// trainable gradient by max_norm / (norm + 1e-6). Returns the norm before clipping. A non-finite norm
// leaves the gradients as they are (PyTorch would turn them into NaN or zero): check the returned
// value or grads_finite() and skip the step.
template <class T, class B>
T clip_grad_norm(parameter_store<T, B>& ps, T max_norm) {
  CPDIFF_CHECK(max_norm >= T(0), config_error, "optim::clip_grad_norm", "max_norm must be >= 0, got ", max_norm);
  const T norm = grad_norm(ps);
  if (!std::isfinite(norm)) return norm;
  const T coef = max_norm / (norm + T(1e-6));
  if (coef < T(1)) {
    const auto g = ps.grads();
    for_each_trainable_range(ps, [&](std::size_t offset, std::size_t length) {
      scale(ps.backend(), g.range(offset, length), coef);
    });
  }
  return norm;
}

// True when every trainable gradient is finite (no NaN / Inf).
template <class T, class B>
bool grads_finite(const parameter_store<T, B>& ps) {
  const auto g = ps.grads();
  bool ok = true;
  for_each_trainable_range(ps, [&](std::size_t offset, std::size_t length) {
    ok = ok && all_finite(ps.backend(), g.range(offset, length));
  });
  return ok;
}

}  // namespace cpdiff::optim
