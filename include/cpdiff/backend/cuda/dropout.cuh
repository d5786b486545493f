#pragma once
// CUDA kernel of dropout, the overload of backend/cpu/dropout.hpp: y = x * keep / (1 - p) with
// keep[i] = (U_i >= p), U_i the i-th uniform of Philox stream `stream` under `seed`. The uniforms are
// bit-equal to the CPU's (integer maths), so both backends drop exactly the same elements.
#include <cstddef>
#include <type_traits>
#include <cstdint>

#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/core/rng.hpp"

namespace cpdiff::ops {

namespace cuda_impl {

// One thread per Philox block of four consecutive elements, as the CPU loop.
template <class T>
struct dropout_block_op {
  const T* x;
  T* y;
  std::size_t n;
  double p;
  T scale;
  std::uint64_t seed, stream;
  __device__ void operator()(std::size_t b) const {
    const philox_block r = philox4x32(seed, b, stream);
    for (std::size_t lane = 0; lane < 4; ++lane) {
      const std::size_t i = b * 4 + lane;
      if (i >= n) break;
      const bool drop = static_cast<double>(u32_to_unit(r.v[lane])) < p;
      y[i] = drop ? T(0) : x[i] * scale;
    }
  }
};

}  // namespace cuda_impl

// y[i] = philox_uniform(seed, stream, i) < p ? 0 : x[i] / (1 - p), for i < n (p in [0, 1)). y may alias x.
template <class T>
void dropout_mask_apply(const gpu& be, dcptr<T> x_dev, device_ptr<T> y_dev,
                        std::size_t n, double p, std::uint64_t seed,
                        std::uint64_t stream) {
  const T* x = x_dev.get();
  T* y = y_dev.get();
  const T scale = T(1.0 / (1.0 - p));
  cuda_impl::launch_n(be, (n + 3) / 4, cuda_impl::dropout_block_op<T>{x, y, n, p, scale, seed, stream});
}

}  // namespace cpdiff::ops
