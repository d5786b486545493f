#pragma once
// sgd<T, B>: torch.optim.SGD (momentum, dampening, Nesterov, L2 weight decay added to the gradient)
// over the trainable entries of a parameter_store.
//   optim::sgd opt(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
// State: momentum_buffer, a flat buffer with the store's layout [ps.size()] (only when momentum != 0).
// As in PyTorch the first step sets buf = d (the decayed gradient) rather than (1 - dampening) * d.
#include <cmath>
#include <cstddef>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/optimizer_state.hpp"
#include "cpdiff/optim/trainable_ranges.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::optim {

struct sgd_config {
  double lr = 1e-3;  // PyTorch requires lr; this default is only a placeholder
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

inline void validate(const sgd_config& c) {
  constexpr const char* where = "optim::sgd";
  detail::check_lr(c.lr, where);
  CPDIFF_CHECK(c.momentum >= 0 && std::isfinite(c.momentum), config_error, where,
               "momentum must be finite and >= 0, got ", c.momentum);
  CPDIFF_CHECK(c.dampening >= 0 && c.dampening <= 1, config_error, where, "dampening must be in [0, 1], got ",
               c.dampening);
  CPDIFF_CHECK(c.weight_decay >= 0 && std::isfinite(c.weight_decay), config_error, where,
               "weight_decay must be finite and >= 0, got ", c.weight_decay);
  CPDIFF_CHECK(!c.nesterov || (c.momentum > 0 && c.dampening == 0), config_error, where,
               "nesterov needs momentum > 0 and dampening 0, got momentum ", c.momentum, ", dampening ",
               c.dampening);
}

template <class T, class B>
class sgd {
 public:
  using value_type = T;
  using backend_type = B;
  using state_type = optimizer_state<T, memory_space_t<B>>;

  explicit sgd(parameter_store<T, B>& ps, sgd_config cfg = {}) : ps_(&ps), be_(ps.backend()), cfg_(cfg) {
    validate(cfg_);
    sync();
  }

  // One SGD step with the gradients in ps.grads(); a no-op when nothing is trainable.
  void step() {
    sync();
    if (ranges_.ranges().empty()) return;
    const bool first = step_ == 0;
    ++step_;
    const auto p = ps_->values().data();
    const auto g = std::as_const(*ps_).grads().data();
    const pointer_t<B, T> buf = has_momentum() ? typed_data<B>(buf_) : pointer_t<B, T>{};
    for (const auto& r : ranges_.ranges())
      sgd_update(be_, p + r.offset, g + r.offset, buf ? buf + r.offset : nullptr, r.length, T(cfg_.lr),
                 T(cfg_.momentum), T(cfg_.dampening), T(cfg_.weight_decay), cfg_.nesterov, first);
  }

  void zero_grad() { fill(be_, ps_->grads(), T(0)); }

  double lr() const { return cfg_.lr; }
  void set_lr(double lr) {
    detail::check_lr(lr, "optim::sgd::set_lr");
    cfg_.lr = lr;
  }
  const sgd_config& config() const { return cfg_; }
  std::size_t step_count() const { return step_; }

  // Views of "<param>.momentum_buffer" for each trainable entry (none without momentum), plus the step.
  state_type state() {
    sync();
    state_type s{step_, {}};
    if (has_momentum()) detail::append_state_views(*ps_, buf_, "momentum_buffer", s.buffers);
    return s;
  }

 private:
  bool has_momentum() const { return cfg_.momentum != 0; }
  void sync() {
    ranges_.refresh(*ps_);
    if (has_momentum()) detail::grow_to(buf_, ps_->size());
  }

  parameter_store<T, B>* ps_;
  B be_;
  sgd_config cfg_;
  trainable_ranges ranges_;
  buffer_t<B, T> buf_;  // momentum_buffer [ps.size()]
  std::size_t step_ = 0;
};

}  // namespace cpdiff::optim
