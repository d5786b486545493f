#pragma once
// ema<T, B>: an exponential moving average of the trainable parameters of a store (the weights the
// diffusion model is evaluated and sampled with).
//   optim::ema avg(ps, 0.9999);      // shadow = a copy of the current values
//   opt.step(); avg.update();        // shadow = d * shadow + (1 - d) * param
//   avg.swap_in();  ... evaluate / sample with the averaged weights ...  avg.swap_out();
//   avg.copy_to(eval_ps);            // or copy them into another store of the same layout
// The shadow has the store's layout [ps.size()]; only trainable entries are averaged, swapped and
// copied, so frozen entries (a LoRA's base weights) are never touched. Construct it (or reset())
// after loading weights: the shadow starts from the values it sees then.
// With warmup the decay used by update n (0-based) is min(decay, (1 + n) / (10 + n)), as diffusers'
// EMAModel does, so early averages are not dominated by the initial weights.
#include <algorithm>
#include <cstddef>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/optimizer_state.hpp"
#include "cpdiff/optim/trainable_ranges.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::optim {

template <class T, class B>
class ema {
 public:
  using value_type = T;
  using backend_type = B;
  using state_type = optimizer_state<T, memory_space_t<B>>;

  explicit ema(parameter_store<T, B>& ps, double decay = 0.9999, bool warmup = false)
      : ps_(&ps), be_(ps.backend()), warmup_(warmup) {
    set_decay(decay);
    reset();
  }

  // shadow = d * shadow + (1 - d) * param over the trainable entries.
  void update() {
    CPDIFF_CHECK(!swapped_, config_error, "optim::ema::update", "called between swap_in() and swap_out()");
    sync();
    const T d = static_cast<T>(current_decay());
    const auto p = std::as_const(*ps_).values().data();
    for (const auto& r : ranges_.ranges()) ema_update(be_, typed_data<B>(shadow_) + r.offset, p + r.offset, r.length, d);
    ++updates_;
  }

  // Restarts the average from the store's current values.
  void reset() {
    CPDIFF_CHECK(!swapped_, config_error, "optim::ema::reset", "called between swap_in() and swap_out()");
    shadow_.resize(ps_->size());
    copy(be_, cview(ps_->values()), shadow_view(0, ps_->size()));
    ranges_.refresh(*ps_);
    updates_ = 0;
  }

  // Exchanges the trainable values with the shadow: the store then holds the averaged weights.
  void swap_in() {
    CPDIFF_CHECK(!swapped_, config_error, "optim::ema::swap_in", "already swapped in");
    exchange();
    swapped_ = true;
  }
  // Puts the training weights back.
  void swap_out() {
    CPDIFF_CHECK(swapped_, config_error, "optim::ema::swap_out", "not swapped in");
    exchange();
    swapped_ = false;
  }
  bool swapped_in() const { return swapped_; }

  // Writes the averaged trainable values into dst (the same store, or one with the same layout);
  // dst's other entries are left alone.
  void copy_to(parameter_store<T, B>& dst) {
    CPDIFF_CHECK(!swapped_, config_error, "optim::ema::copy_to", "called between swap_in() and swap_out()");
    sync();
    CPDIFF_CHECK(dst.size() == ps_->size() && dst.count() == ps_->count(), shape_error, "optim::ema::copy_to",
                 "destination store has ", dst.count(), " entries / ", dst.size(), " elements, expected ",
                 ps_->count(), " / ", ps_->size());
    for (const auto& r : ranges_.ranges())
      copy(be_, cview(shadow_view(r.offset, r.length)), view{dst.values().data() + r.offset, shape{r.length}});
  }

  double decay() const { return decay_; }
  void set_decay(double d) {
    CPDIFF_CHECK(d >= 0 && d <= 1, config_error, "optim::ema", "decay must be in [0, 1], got ", d);
    decay_ = d;
  }
  // The decay the next update() will use.
  double current_decay() const {
    if (!warmup_) return decay_;
    const double n = static_cast<double>(updates_);
    return std::min(decay_, (1 + n) / (10 + n));
  }
  std::size_t num_updates() const { return updates_; }

  // Views of the shadow under each trainable parameter's own name, plus the update count (for warm-up).
  state_type state() {
    sync();
    state_type s{updates_, {}};
    for (const auto& e : ps_->entries())
      if (e.trainable) s.buffers.push_back({e.name, {typed_data<B>(shadow_) + e.offset, e.shape}});
    return s;
  }

 private:
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  view shadow_view(std::size_t offset, std::size_t length) { return {typed_data<B>(shadow_) + offset, shape{length}}; }

  // Entries added to the store since the last call start their average at their current values.
  void sync() {
    const std::size_t old = shadow_.size(), n = ps_->size();
    if (old < n) {
      shadow_.resize(n);
      copy(be_, cview(ps_->values().slice(old, n)), shadow_view(old, n - old));
    }
    ranges_.refresh(*ps_);
  }

  void exchange() {
    sync();
    const auto p = ps_->values().data();
    for (const auto& r : ranges_.ranges()) swap_buffers(be_, p + r.offset, typed_data<B>(shadow_) + r.offset, r.length);
  }

  parameter_store<T, B>* ps_;
  B be_;
  double decay_ = 0.9999;
  bool warmup_ = false;
  bool swapped_ = false;
  trainable_ranges ranges_;
  buffer_t<B, T> shadow_;  // [ps.size()]
  std::size_t updates_ = 0;
};

}  // namespace cpdiff::optim
