#pragma once
// Memory spaces and the pointer each one hands out.
//   host_space:   plain T* (the CPU backend's buffers, ordinary host memory).
//   device_space: device_ptr<T>, a GPU address that host code cannot dereference: it has no operator*,
//                 no operator[] and no conversion to T*, so `t.data()[i]` on a GPU tensor does not compile
//                 and a device address cannot reach a CPU kernel (nor a host address a GPU one: the
//                 constructor from T* is explicit). Kernels unwrap it with get() inside backend/cuda/.
// The space is part of every view's, tensor's and parameter store's type (core/tensor_view.hpp).
#include <concepts>
#include <cstddef>
#include <type_traits>

namespace cpdiff {

struct host_space {};
struct device_space {};

template <class T>
class device_ptr {
 public:
  using element_type = T;

  constexpr device_ptr() = default;
  constexpr device_ptr(std::nullptr_t) {}
  constexpr explicit device_ptr(T* p) : p_(p) {}
  // device_ptr<T> -> device_ptr<const T>
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  constexpr device_ptr(device_ptr<U> o) : p_(o.get()) {}

  // The raw device address, for kernel launches and CUDA library calls inside the backend only.
  constexpr T* get() const { return p_; }
  constexpr explicit operator bool() const { return p_ != nullptr; }

  template <std::integral I>
  constexpr device_ptr operator+(I k) const {
    return device_ptr(p_ + k);
  }
  friend constexpr bool operator==(device_ptr a, device_ptr b) { return a.p_ == b.p_; }
  friend constexpr bool operator==(device_ptr a, std::nullptr_t) { return a.p_ == nullptr; }

 private:
  T* p_ = nullptr;
};

namespace detail {
template <class T, class Space>
struct space_pointer;
template <class T>
struct space_pointer<T, host_space> {
  using type = T*;
  static constexpr T* wrap(T* p) { return p; }
};
template <class T>
struct space_pointer<T, device_space> {
  using type = device_ptr<T>;
  static constexpr device_ptr<T> wrap(T* p) { return device_ptr<T>(p); }
};
}  // namespace detail

// The pointer type of memory space Space: T* on the host, device_ptr<T> on a device.
template <class T, class Space>
using space_pointer_t = typename detail::space_pointer<T, Space>::type;

// A raw address of storage in Space, typed (for buffers' owners: tensor, parameter_store).
template <class Space, class T>
constexpr space_pointer_t<T, Space> in_space(T* p) {
  return detail::space_pointer<T, Space>::wrap(p);
}

}  // namespace cpdiff
