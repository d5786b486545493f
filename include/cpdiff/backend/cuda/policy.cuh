#pragma once
// The cuda backend policy: `cpdiff::cuda` and its backend_traits (device memory, device_buffer).
// A value type like `cpu`; it carries the stream its kernels run on:
//   cuda be;                    // the legacy default stream
//   cuda s = be.on(my_stream);  // same backend, work queued on my_stream
// CCCL (Thrust's library) declares a namespace ::cuda, so after `using namespace cpdiff;` a bare `cuda`
// is ambiguous: write cpdiff::cuda, or an alias (`using gpu = cpdiff::cuda;`).
// Every cuda kernel header includes this one (and not backend/cuda.cuh), so the kernel headers can be
// included in any order; <cpdiff/backend/cuda.cuh> includes all of them.
#if !defined(__CUDACC__)
#error "cpdiff: the cuda backend's headers (.cuh) need nvcc: compile this translation unit as CUDA (a .cu file)"
#else
#include <cuda_runtime.h>

#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/device_buffer.cuh"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/tensor/tensor_view.hpp"

namespace cpdiff {

struct cuda : ops::backend_tag {
  cudaStream_t stream = nullptr;

  // A copy of this backend that queues its work on stream s.
  cuda on(cudaStream_t s) const {
    cuda c = *this;
    c.stream = s;
    return c;
  }
  friend bool operator==(const cuda& a, const cuda& b) { return a.stream == b.stream; }
};

template <>
struct backend_traits<cuda> {
  using memory_space = device_space;
  template <class T>
  using buffer = device_buffer<T>;
  static constexpr const char* name = "cuda";
};

namespace ops {
// Device views, the counterparts of hview / hcview (backend/cpu/elementwise.hpp).
template <class T>
using dview = tensor_view<T, device_space>;
template <class T>
using dcview = tensor_view<const T, device_space>;
}  // namespace ops

}  // namespace cpdiff

#endif  // __CUDACC__
