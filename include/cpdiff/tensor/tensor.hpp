#pragma once
// tensor<T, Backend>: owning, contiguous, row-major storage in the backend's memory space.
// resize() keeps capacity, so a layer's cached activations are allocated once and reused each step.
#include <utility>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/tensor/tensor_view.hpp"

namespace cpdiff {

template <class T, class B>
class tensor {
 public:
  using value_type = T;
  using backend_type = B;
  using memory_space = memory_space_t<B>;
  using view_type = tensor_view<T, memory_space>;
  using const_view_type = tensor_view<const T, memory_space>;

  tensor() = default;
  explicit tensor(cpdiff::shape s, B be = {}) : be_(be) { resize(s); }

  // Changes the shape; reallocates only when the new size exceeds the old (values unspecified after growth).
  void resize(cpdiff::shape s) {
    if (buf_.size() < s.size()) buf_.resize(s.size());
    shape_ = s;
  }
  const B& backend() const { return be_; }
  T* data() { return buf_.data(); }
  const T* data() const { return buf_.data(); }
  const cpdiff::shape& shape() const { return shape_; }
  std::size_t size() const { return shape_.size(); }
  std::size_t dim(std::size_t i) const { return shape_[i]; }
  std::size_t rank() const { return shape_.rank(); }

  view_type view() { return {buf_.data(), shape_}; }
  const_view_type view() const { return {buf_.data(), shape_}; }
  const_view_type cview() const { return {buf_.data(), shape_}; }
  operator view_type() { return view(); }
  operator const_view_type() const { return cview(); }

 private:
  B be_{};
  buffer_t<B, T> buf_;
  cpdiff::shape shape_;
};

}  // namespace cpdiff
