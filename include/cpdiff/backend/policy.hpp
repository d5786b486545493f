#pragma once
// Backend policy types (DESIGN.md "Backends as policy types").
// A backend is a small value type; kernels are overloads on it in namespace cpdiff::ops:
// gemm(cpu{}, ...), gemm(gpu{}, ...), with the signatures listed in backend/ops.hpp. Every backend derives from ops::backend_tag, so library code
// calls kernels unqualified and argument-dependent lookup finds them at instantiation: a backend
// whose header is included after the layers still drops in without touching the layers' code.
// backend_traits<B> gives the memory space and buffer type; the primary template fails with a
// message that names the header to include, so a missing backend is a compile error, not a link error.
#include <type_traits>

#include "cpdiff/backend/host_buffer.hpp"
#include "cpdiff/core/memory_space.hpp"

namespace cpdiff {

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
                "cpdiff: no backend_traits for this type. For cpdiff::gpu include <cpdiff/cpdiff_cuda.cuh> and "
                "compile with nvcc; a backend of your own specialises backend_traits (memory_space, buffer, name).");
};

// The CPU policy's traits live here, beside the policy, so that code above the backend can name host
// tensors without including the CPU kernels (backend/cpu.hpp, which only the umbrella headers include).
template <>
struct backend_traits<cpu> {
  using memory_space = host_space;
  template <class T>
  using buffer = host_buffer<T>;
  static constexpr const char* name = "cpu";
};

template <class B>
using memory_space_t = typename backend_traits<B>::memory_space;

template <class B, class T>
using buffer_t = typename backend_traits<B>::template buffer<T>;

// The pointer to T in backend B's memory: T* for cpu, device_ptr<T> for gpu (core/memory_space.hpp).
template <class B, class T>
using pointer_t = space_pointer_t<T, memory_space_t<B>>;

// A backend buffer's storage as its space's pointer, for the few owners of raw buffers (tensor, the
// parameter store, optimiser state): typed_data<B>(buf).
template <class B, class Buf>
auto typed_data(Buf& buf) {
  return in_space<memory_space_t<B>>(buf.data());
}

template <class B>
concept backend = requires { typename backend_traits<B>::memory_space; };

// A backend value with no state (cpu) is the same value wherever it is made, so a parameter-free layer may
// default-construct it. One with state (gpu: its stream) must come from the model's parameter store, so that
// no kernel runs on another stream: parameter-free layers have no default constructor for it.
template <class B>
concept stateless_backend = std::is_empty_v<B>;

}  // namespace cpdiff
