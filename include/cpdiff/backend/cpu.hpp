#pragma once
// The CPU backend: traits plus every CPU kernel header.
#include "cpdiff/backend/host_buffer.hpp"
#include "cpdiff/backend/policy.hpp"

namespace cpdiff {
template <>
struct backend_traits<cpu> {
  using memory_space = host_space;
  template <class T>
  using buffer = host_buffer<T>;
  static constexpr const char* name = "cpu";
};
}  // namespace cpdiff

#include "cpdiff/backend/cpu/blas.hpp"
#include "cpdiff/backend/cpu/elementwise.hpp"
