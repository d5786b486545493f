#pragma once
// tensor<T, Backend>: owning, contiguous, row-major storage in the backend's memory space.
// resize() keeps capacity, so a layer's cached activations are allocated once and reused each step.
// A tensor holds memory, not a backend value: kernels take the backend from the layer or model that owns
// the tensor (its parameter store), so a stream is never taken from a default-built value.
// data() is the memory space's pointer: T* for host memory, device_ptr<T> (no element access) for a GPU's.
#include <utility>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff {

template <class T, class B>
class tensor {
 public:
  using value_type = T;
  using backend_type = B;
  using memory_space = memory_space_t<B>;
  using view_type = tensor_view<T, memory_space>;
  using const_view_type = tensor_view<const T, memory_space>;
  using pointer = space_pointer_t<T, memory_space>;
  using const_pointer = space_pointer_t<const T, memory_space>;

  tensor() = default;
  explicit tensor(cpdiff::shape s) { resize(s); }

  // Changes the shape; reallocates only when the new size exceeds the old (values unspecified after growth).
  void resize(cpdiff::shape s) {
    if (buf_.size() < s.size()) buf_.resize(s.size());
    shape_ = s;
  }
  pointer data() { return in_space<memory_space>(buf_.data()); }
  const_pointer data() const { return in_space<memory_space>(buf_.data()); }
  const cpdiff::shape& shape() const { return shape_; }
  std::size_t size() const { return shape_.size(); }
  std::size_t dim(std::size_t i) const { return shape_[i]; }
  std::size_t rank() const { return shape_.rank(); }

  view_type view() { return {data(), shape_}; }
  const_view_type view() const { return {data(), shape_}; }
  const_view_type cview() const { return {data(), shape_}; }
  operator view_type() { return view(); }
  operator const_view_type() const { return cview(); }

 private:
  buffer_t<B, T> buf_;
  cpdiff::shape shape_;
};

}  // namespace cpdiff
