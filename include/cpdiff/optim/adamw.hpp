#pragma once
// adamw<T, B>: torch.optim.AdamW over the trainable entries of a parameter_store.
//   optim::adamw opt(ps, {.lr = 3e-4, .weight_decay = 0});   // T, B deduced from the store
//   ... forward / backward (adds into ps.grads()) ...
//   opt.step(); opt.zero_grad();
// State: exp_avg m and exp_avg_sq v, flat buffers with the store's layout [ps.size()] (frozen
// entries' slots stay zero), and one step count for the whole store. PyTorch counts steps per
// parameter; the two agree unless a parameter is unfrozen part-way through training.
#include <cmath>
#include <cstddef>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/optimizer_state.hpp"
#include "cpdiff/optim/trainable_ranges.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::optim {

// PyTorch's defaults.
struct adamw_config {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

inline void validate(const adamw_config& c) {
  constexpr const char* where = "optim::adamw";
  detail::check_lr(c.lr, where);
  CPDIFF_CHECK(c.beta1 >= 0 && c.beta1 < 1, config_error, where, "beta1 must be in [0, 1), got ", c.beta1);
  CPDIFF_CHECK(c.beta2 >= 0 && c.beta2 < 1, config_error, where, "beta2 must be in [0, 1), got ", c.beta2);
  CPDIFF_CHECK(c.eps >= 0 && std::isfinite(c.eps), config_error, where, "eps must be finite and >= 0, got ", c.eps);
  CPDIFF_CHECK(c.weight_decay >= 0 && std::isfinite(c.weight_decay), config_error, where,
               "weight_decay must be finite and >= 0, got ", c.weight_decay);
}

template <class T, class B>
class adamw {
 public:
  using value_type = T;
  using backend_type = B;
  using state_type = optimizer_state<T, memory_space_t<B>>;

  explicit adamw(parameter_store<T, B>& ps, adamw_config cfg = {}) : ps_(&ps), be_(ps.backend()), cfg_(cfg) {
    validate(cfg_);
    ranges_.refresh(ps);
    detail::grow_to(m_, ps.size());
    detail::grow_to(v_, ps.size());
  }

  // One AdamW step with the gradients in ps.grads(); a no-op when nothing is trainable.
  void step() {
    sync();
    if (ranges_.ranges().empty()) return;
    ++step_;
    // bc_k = 1 - beta_k^step, in double as PyTorch computes them (Python floats)
    const double bc1 = 1 - std::pow(cfg_.beta1, static_cast<double>(step_));
    const double bc2 = 1 - std::pow(cfg_.beta2, static_cast<double>(step_));
    const auto p = ps_->values().data();
    const auto g = std::as_const(*ps_).grads().data();
    for (const auto& r : ranges_.ranges())
      adamw_update(be_, p + r.offset, g + r.offset, typed_data<B>(m_) + r.offset, typed_data<B>(v_) + r.offset, r.length,
                   T(cfg_.lr), T(cfg_.beta1), T(cfg_.beta2), T(cfg_.eps), T(cfg_.weight_decay), T(bc1), T(bc2));
  }

  // Zeroes the whole gradient buffer (frozen entries' gradients are zero anyway).
  void zero_grad() { fill(be_, ps_->grads(), T(0)); }

  double lr() const { return cfg_.lr; }
  void set_lr(double lr) {
    detail::check_lr(lr, "optim::adamw::set_lr");
    cfg_.lr = lr;
  }
  const adamw_config& config() const { return cfg_; }
  std::size_t step_count() const { return step_; }

  // Views of "<param>.exp_avg" / "<param>.exp_avg_sq" for each trainable entry, plus the step count.
  state_type state() {
    sync();
    state_type s{step_, {}};
    detail::append_state_views(*ps_, m_, "exp_avg", s.buffers);
    detail::append_state_views(*ps_, v_, "exp_avg_sq", s.buffers);
    return s;
  }

 private:
  // Follows a store that gained entries or had flags flipped since the last call.
  void sync() {
    ranges_.refresh(*ps_);
    detail::grow_to(m_, ps_->size());
    detail::grow_to(v_, ps_->size());
  }

  parameter_store<T, B>* ps_;
  B be_;
  adamw_config cfg_;
  trainable_ranges ranges_;
  buffer_t<B, T> m_, v_;  // [ps.size()] each
  std::size_t step_ = 0;
};

}  // namespace cpdiff::optim
