#pragma once
// Learning-rate schedules as small value types. Their members are plain data (configuration first,
// then any state), so a checkpoint stores them field by field and a resumed run continues exactly.
// The optimiser is told the rate; schedules never hold one:
//   optim::cosine_warmup_lr sched{.base_lr = 1e-3, .total_steps = 10000, .warmup_steps = 500};
//   opt.set_lr(sched.lr(opt.step_count())); opt.step();
//   optim::reduce_lr_on_plateau plateau{.lr = 1e-3, .patience = 5};
//   opt.set_lr(plateau.step(val_loss));                           // once per evaluation
// Configurations are checked on use (lr(), step()) and throw config_error naming the field.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>

#include "cpdiff/core/error.hpp"

namespace cpdiff::optim {

namespace detail {
inline void check_rate(double v, const char* where, const char* field) {
  CPDIFF_CHECK(v >= 0 && std::isfinite(v), config_error, where, field, " must be finite and >= 0, got ", v);
}
}  // namespace detail

// The same rate at every step.
struct constant_lr {
  double base_lr = 1e-3;

  double lr(std::size_t /*step*/) const {
    detail::check_rate(base_lr, "optim::constant_lr", "base_lr");
    return base_lr;
  }
};

// Linear warm-up, then cosine annealing (torch CosineAnnealingLR's closed form) down to eta_min:
//   step <  W:        base_lr * (step + 1) / W
//   W <= step <= T:   eta_min + (base_lr - eta_min) * (1 + cos(pi * (step - W) / (T - W))) / 2
//   step >  T:        eta_min   (PyTorch's cosine would rise again; training is meant to stop at T)
// with W = warmup_steps, T = total_steps, step = optimiser steps already taken (0 for the first).
// The warm-up is torch's LinearLR(start_factor = 1/W, total_iters = W - 1): it reaches base_lr on
// the last warm-up step, so no step runs at rate 0; W = 0 is plain CosineAnnealingLR(T_max = T).
struct cosine_warmup_lr {
  double base_lr = 1e-3;
  std::size_t total_steps = 1;
  std::size_t warmup_steps = 0;
  double eta_min = 0;

  double lr(std::size_t step) const {
    constexpr const char* where = "optim::cosine_warmup_lr";
    detail::check_rate(base_lr, where, "base_lr");
    detail::check_rate(eta_min, where, "eta_min");
    CPDIFF_CHECK(total_steps > warmup_steps, config_error, where, "total_steps (", total_steps,
                 ") must exceed warmup_steps (", warmup_steps, ")");
    if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    if (step >= total_steps) return eta_min;
    const double t = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
    return eta_min + (base_lr - eta_min) * (1 + std::cos(std::numbers::pi * t)) / 2;
  }
};

enum class plateau_mode { min, max };        // the metric should go down (a loss) / up (an accuracy)
enum class threshold_mode { rel, abs };      // "better" means by a relative / an absolute margin

// torch.optim.lr_scheduler.ReduceLROnPlateau (factor 0.5 here, 0.1 in PyTorch): after more than
// `patience` evaluations without improvement the rate is multiplied by `factor` (not below min_lr;
// changes smaller than eps are ignored), then `cooldown` evaluations pass before counting again.
struct reduce_lr_on_plateau {
  // configuration
  double lr = 1e-3;  // current rate; set it to the optimiser's initial rate
  double factor = 0.5;
  std::size_t patience = 10;
  double threshold = 1e-4;
  threshold_mode threshold_kind = threshold_mode::rel;
  plateau_mode mode = plateau_mode::min;
  std::size_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
  // state
  double best = std::numeric_limits<double>::infinity();  // reset to the mode's worst on the first step
  std::size_t num_bad_epochs = 0;
  std::size_t cooldown_counter = 0;
  std::size_t last_epoch = 0;  // evaluations seen

  // Records one evaluation of the metric; returns the rate to use from now on.
  double step(double metric) {
    validate();
    if (last_epoch == 0)
      best = mode == plateau_mode::min ? std::numeric_limits<double>::infinity()
                                       : -std::numeric_limits<double>::infinity();
    ++last_epoch;
    if (is_better(metric)) {
      best = metric;
      num_bad_epochs = 0;
    } else {
      ++num_bad_epochs;
    }
    if (cooldown_counter > 0) {  // in cooldown: bad evaluations do not count
      --cooldown_counter;
      num_bad_epochs = 0;
    }
    if (num_bad_epochs > patience) {
      const double reduced = std::max(lr * factor, min_lr);
      if (lr - reduced > eps) lr = reduced;
      cooldown_counter = cooldown;
      num_bad_epochs = 0;
    }
    return lr;
  }

  bool is_better(double metric) const {
    if (mode == plateau_mode::min)
      return threshold_kind == threshold_mode::rel ? metric < best * (1 - threshold) : metric < best - threshold;
    return threshold_kind == threshold_mode::rel ? metric > best * (1 + threshold) : metric > best + threshold;
  }

  void validate() const {
    constexpr const char* where = "optim::reduce_lr_on_plateau";
    detail::check_rate(lr, where, "lr");
    detail::check_rate(min_lr, where, "min_lr");
    detail::check_rate(threshold, where, "threshold");
    detail::check_rate(eps, where, "eps");
    CPDIFF_CHECK(factor >= 0 && factor < 1, config_error, where, "factor must be in [0, 1), got ", factor);
  }
};

}  // namespace cpdiff::optim
