#pragma once
// The training guard (DESIGN.md "Errors"): a NaN / Inf loss or gradient stops the run with a
// numeric_error that names the step (1-based: the step that would have been logged as "step k"),
// the loss and, for gradients, the first offending parameter; never a silent garbage model.
// Both checks run before the optimiser step, so the model and its optimiser state are those of the
// last good step when the error is thrown.
#include <cmath>
#include <cstddef>
#include <string>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/clip_grad.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::train {

inline void check_loss_finite(const char* where, std::size_t step, double loss, std::size_t epoch) {
  CPDIFF_CHECK(std::isfinite(loss), numeric_error, where, "loss is ", loss, " at step ", step, " (epoch ", epoch,
               "): check the data for NaN / Inf and lower the learning rate");
}

// Throws naming the first trainable parameter whose gradient holds a NaN / Inf.
template <class T, class B>
void check_grads_finite(const char* where, parameter_store<T, B>& ps, std::size_t step, double loss,
                        const char* model = "model") {
  if (optim::grads_finite(ps)) return;
  std::string bad = "?";
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const param_entry& e = ps.entry(param_id{i});
    if (e.trainable && !all_finite(ps.backend(), tensor_view<const T, memory_space_t<B>>(ps.grad(param_id{i})))) {
      bad = e.name;
      break;
    }
  }
  throw_error<numeric_error>(where, "non-finite gradient of ", model, " parameter '", bad, "' at step ", step,
                             " (loss ", loss, "): lower the learning rate or enable gradient clipping");
}

}  // namespace cpdiff::train
