#pragma once
// The GPU backend policy: `cpdiff::gpu` and its backend_traits (device memory, device_buffer).
// A value type like `cpu`; it carries the stream its kernels run on:
//   gpu be;                    // the legacy default stream
//   gpu s = be.on(my_stream);  // same backend, work queued on my_stream
// Models take it once (their parameter store keeps it) and every layer's kernels run on its stream.
// It was named `cuda` before 0.2: that collided with CCCL's namespace ::cuda after `using namespace cpdiff`.
// Every cuda kernel header includes this one (and not backend/cuda.cuh), so the kernel headers can be
// included in any order; <cpdiff/backend/cuda.cuh> includes all of them.
#if !defined(__CUDACC__)
#error "cpdiff: the cuda backend's headers (.cuh) need nvcc: compile this translation unit as CUDA (a .cu file)"
#else
#include <cuda_runtime.h>

#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/device_buffer.cuh"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"

namespace cpdiff {

struct gpu : ops::backend_tag {
  cudaStream_t stream = nullptr;

  // A copy of this backend that queues its work on stream s.
  gpu on(cudaStream_t s) const {
    gpu c = *this;
    c.stream = s;
    return c;
  }
  friend bool operator==(const gpu& a, const gpu& b) { return a.stream == b.stream; }
};

template <>
struct backend_traits<gpu> {
  using memory_space = device_space;
  template <class T>
  using buffer = device_buffer<T>;
  static constexpr const char* name = "cuda";
};

}  // namespace cpdiff

#endif  // __CUDACC__
