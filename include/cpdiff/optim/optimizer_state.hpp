#pragma once
// What a checkpoint needs from an optimiser: its step count and its per-parameter state buffers, under
// PyTorch's state names ("<param>.exp_avg", "<param>.exp_avg_sq", "<param>.momentum_buffer").
// The views alias the optimiser's own buffers and `step` refers to its counter, so a checkpoint
// writer reads through them and a loader restores by writing into them:
//   auto s = opt.state();
//   for (auto& b : s.buffers) save(b.name, b.data);      // or load(b.name, b.data)
//   s.step = saved_step;
// Only trainable parameters have entries (frozen ones never get state).
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::optim {

template <class T, class Space>
struct named_buffer {
  std::string name;              // "<param>.<state>", e.g. "fc.weight.exp_avg"
  tensor_view<T, Space> data;    // the parameter's shape
};

template <class T, class Space>
struct optimizer_state {
  std::size_t& step;  // optimiser steps taken (the bias-correction / first-step counter)
  std::vector<named_buffer<T, Space>> buffers;
};

namespace detail {
inline void check_lr(double lr, const char* where) {
  CPDIFF_CHECK(lr >= 0 && std::isfinite(lr), config_error, where, "learning rate must be finite and >= 0, got ", lr);
}

// Appends "<param>.<suffix>" views into `buf` (same layout as the store) for every trainable entry.
template <class T, class B, class Buf>
void append_state_views(const parameter_store<T, B>& ps, Buf& buf, const char* suffix,
                        std::vector<named_buffer<T, memory_space_t<B>>>& out) {
  for (const auto& e : ps.entries())
    if (e.trainable) out.push_back({e.name + "." + suffix, {in_space<memory_space_t<B>>(buf.data() + e.offset), e.shape}});
}

// Grows a state buffer to the store's size; new elements are zero (store entries added after the
// optimiser was made start with empty state, as in PyTorch).
template <class Buf>
void grow_to(Buf& buf, std::size_t n) {
  if (buf.size() < n) buf.resize(n);
}
}  // namespace detail

}  // namespace cpdiff::optim
