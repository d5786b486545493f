#pragma once
// Backend policy types (DESIGN.md "Backends as policy types").
// A backend is a small value type; kernels are overloads on it in namespace cpdiff::ops:
// gemm(cpu{}, ...), gemm(cuda{}, ...). Every backend derives from ops::backend_tag, so library code
// calls kernels unqualified and argument-dependent lookup finds them at instantiation: a backend
// whose header is included after the layers still drops in without touching the layers' code.
// backend_traits<B> gives the memory space and buffer type; the primary template fails with a
// message that names the header to include, so a missing backend is a compile error, not a link error.
#include <type_traits>

namespace cpdiff {

// Memory spaces: part of a view's type, so host memory cannot reach a device kernel.
struct host_space {};
struct device_space {};

namespace ops {
struct backend_tag {};
}  // namespace ops

// The CPU backend (Eigen kernels, OpenMP over batch / channels).
struct cpu : ops::backend_tag {
  friend constexpr bool operator==(cpu, cpu) { return true; }
};

template <class B>
inline constexpr bool dependent_false_v = false;

template <class B>
struct backend_traits {
  static_assert(dependent_false_v<B>,
                "cpdiff: no backend_traits for this type. For cpdiff::cpu include <cpdiff/backend/cpu.hpp>; "
                "for cpdiff::cuda include <cpdiff/cpdiff_cuda.cuh> and compile with nvcc.");
};

template <class B>
using memory_space_t = typename backend_traits<B>::memory_space;

template <class B, class T>
using buffer_t = typename backend_traits<B>::template buffer<T>;

template <class B>
concept backend = requires { typename backend_traits<B>::memory_space; };

}  // namespace cpdiff
