#pragma once
// tensor_view<T, Space>: a non-owning, contiguous, row-major view (pointer + shape).
// The memory space is part of the type: a host view cannot be passed where a device view is expected,
// and a device view's data() is a device_ptr<T> (core/memory_space.hpp), never a host T*.
// T may be const (read-only view); a view of T converts to a view of const T.
#include <cstddef>
#include <span>
#include <type_traits>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/memory_space.hpp"
#include "cpdiff/core/shape.hpp"

namespace cpdiff {

template <class T, class Space = host_space>
class tensor_view {
 public:
  using value_type = std::remove_const_t<T>;
  using memory_space = Space;
  using pointer = space_pointer_t<T, Space>;  // T* on the host, device_ptr<T> on a device

  constexpr tensor_view() = default;
  constexpr tensor_view(pointer data, shape s) : data_(data), shape_(s) {}
  // view<T> -> view<const T>
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr tensor_view(const tensor_view<U, Space>& v) : data_(v.data()), shape_(v.shape()) {}

  constexpr pointer data() const { return data_; }
  constexpr const cpdiff::shape& shape() const { return shape_; }
  constexpr std::size_t size() const { return shape_.size(); }
  constexpr std::size_t rank() const { return shape_.rank(); }
  constexpr std::size_t dim(std::size_t i) const { return shape_[i]; }
  constexpr bool empty() const { return size() == 0; }

  // Same data, new shape with the same number of elements.
  tensor_view reshape(cpdiff::shape s) const {
    CPDIFF_CHECK(s.size() == size(), shape_error, "tensor_view::reshape", "cannot reshape ", shape_, " (",
                 size(), " elements) to ", s, " (", s.size(), " elements)");
    return {data_, s};
  }
  // Rows [begin, end) of dimension 0.
  tensor_view slice(std::size_t begin, std::size_t end) const {
    CPDIFF_CHECK(rank() > 0 && begin <= end && end <= shape_[0], shape_error, "tensor_view::slice",
                 "rows [", begin, ", ", end, ") out of range for ", shape_);
    cpdiff::shape s = shape_;
    s[0] = end - begin;
    return {data_ + begin * shape_.inner_size(), s};
  }
  // Elements [offset, offset + count) of the flat buffer, as a 1-D view (e.g. one parameter's range).
  tensor_view range(std::size_t offset, std::size_t count) const {
    CPDIFF_CHECK(offset <= size() && count <= size() - offset, shape_error, "tensor_view::range", "elements [",
                 offset, ", ", offset + count, ") out of range for ", shape_, " (", size(), " elements)");
    return {data_ + offset, cpdiff::shape{count}};
  }
  // Row i of dimension 0, with that dimension dropped.
  tensor_view operator[](std::size_t i) const {
    CPDIFF_CHECK(rank() > 0 && i < shape_[0], shape_error, "tensor_view::operator[]", "index ", i,
                 " out of range for ", shape_);
    return {data_ + i * shape_.inner_size(), shape_.tail(1)};
  }

  // Host-only element access and spans.
  std::span<T> span() const
    requires std::is_same_v<Space, host_space>
  {
    return {data_, size()};
  }
  template <class... I>
  T& operator()(I... idx) const
    requires std::is_same_v<Space, host_space>
  {
    static_assert(sizeof...(I) <= shape::max_rank);
    std::size_t ix[] = {static_cast<std::size_t>(idx)...};
    CPDIFF_ASSERT(sizeof...(I) == rank());
    std::size_t off = 0;
    for (std::size_t k = 0; k < sizeof...(I); ++k) {
      CPDIFF_ASSERT(ix[k] < shape_[k]);
      off = off * shape_[k] + ix[k];
    }
    return data_[off];
  }

 private:
  pointer data_ = nullptr;
  cpdiff::shape shape_;
};

template <class T, class Space = host_space>
using const_view = tensor_view<const T, Space>;

// Check a view's shape at a public entry point: "conv1d::forward: input: expected [*, 4, *] got [2, 3, 9]".
template <class V>
void expect_rank(const V& v, std::size_t rank, const char* where, const char* what) {
  CPDIFF_CHECK(v.rank() == rank, shape_error, where, what, ": expected rank ", rank, ", got shape ", v.shape());
}
template <class V>
void expect_shape(const V& v, const shape& s, const char* where, const char* what) {
  CPDIFF_CHECK(v.shape() == s, shape_error, where, what, ": expected shape ", s, ", got ", v.shape());
}
template <class V>
void expect_dim(const V& v, std::size_t i, std::size_t n, const char* where, const char* what) {
  CPDIFF_CHECK(v.rank() > i && v.dim(i) == n, shape_error, where, what, ": expected dimension ", i, " = ", n,
               ", got shape ", v.shape());
}
// At the top of every backward: "nn::linear::backward: called before forward" (never a shape mismatch
// against the empty cache).
inline void expect_forward_ran(bool ran, const char* where) {
  CPDIFF_CHECK(ran, shape_error, where, "called before forward (nothing cached to differentiate)");
}
template <class V>
void expect_nonempty(const V& v, const char* where, const char* what) {
  CPDIFF_CHECK(v.size() > 0, shape_error, where, what, ": empty tensor (shape ", v.shape(), ")");
}

}  // namespace cpdiff
