#pragma once
// The trainable part of a parameter_store as a few contiguous element ranges of its flat buffers.
// Entries are laid out one after another in registration order, so adjacent trainable entries merge
// into one range: a step is then one kernel call per run of trainable entries, not one per tensor.
//   for_each_trainable_range(ps, f)   f(offset, length) for each merged run, allocation-free
//   trainable_ranges                  the same runs cached by an optimiser; refresh(ps) rebuilds them
//                                     only when the store's entry count or a trainable flag changed.
#include <cstddef>
#include <vector>

#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::optim {

struct element_range {
  std::size_t offset = 0;  // in elements, into values() / grads()
  std::size_t length = 0;
};

// f(offset, length) for each maximal run of adjacent trainable, non-empty entries.
template <class T, class B, class F>
void for_each_trainable_range(const parameter_store<T, B>& ps, F&& f) {
  element_range run;
  for (const auto& e : ps.entries()) {
    const std::size_t n = e.shape.size();
    if (!e.trainable || n == 0) continue;
    if (run.length > 0 && run.offset + run.length == e.offset) {
      run.length += n;
    } else {
      if (run.length > 0) f(run.offset, run.length);
      run = {e.offset, n};
    }
  }
  if (run.length > 0) f(run.offset, run.length);
}

class trainable_ranges {
 public:
  // Rebuilds the runs when the store gained entries or a flag was flipped (set_trainable); otherwise
  // costs one pass over the entry flags (no allocation), which is nothing next to a step.
  template <class T, class B>
  const std::vector<element_range>& refresh(const parameter_store<T, B>& ps) {
    const auto& entries = ps.entries();
    bool same = flags_.size() == entries.size();
    for (std::size_t i = 0; same && i < entries.size(); ++i) same = (flags_[i] != 0) == entries[i].trainable;
    if (!same) {
      flags_.resize(entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) flags_[i] = entries[i].trainable ? 1 : 0;
      ranges_.clear();
      total_ = 0;
      for_each_trainable_range(ps, [&](std::size_t offset, std::size_t length) {
        ranges_.push_back({offset, length});
        total_ += length;
      });
    }
    return ranges_;
  }
  const std::vector<element_range>& ranges() const { return ranges_; }
  // Number of trainable elements (after the last refresh).
  std::size_t elements() const { return total_; }

 private:
  std::vector<char> flags_;  // trainable flag of each entry at the last rebuild
  std::vector<element_range> ranges_;
  std::size_t total_ = 0;
};

}  // namespace cpdiff::optim
