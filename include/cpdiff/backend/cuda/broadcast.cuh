#pragma once
// CUDA kernels for a per-sample vector broadcast over channels (the U-Net's timestep embedding), one
// overload per kernel of backend/cpu/broadcast.hpp.
#include <cstddef>
#include <type_traits>

#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

namespace cuda_impl {

template <class T>
struct add_over_channels_op {
  const T *x, *e;
  T* y;
  std::size_t c, s;
  __device__ void operator()(std::size_t i) const { y[i] = x[i] + e[(i / (c * s)) * s + i % s]; }
};

// One thread per (n, s), channels in order: the CPU's additions in the CPU's order.
template <class T>
struct add_channel_sums_op {
  const T* d;
  T* de;
  std::size_t c, s;
  __device__ void operator()(std::size_t i) const {
    const std::size_t n = i / s, k = i % s;
    T acc = de[i];
    for (std::size_t j = 0; j < c; ++j) acc += d[(n * c + j) * s + k];
    de[i] = acc;
  }
};

}  // namespace cuda_impl

// y[n, c, s] = x[n, c, s] + e[n, s]
template <class T>
void add_over_channels(const gpu& be, dcptr<T> x_dev,
                       dcptr<T> e_dev, device_ptr<T> y_dev, std::size_t n,
                       std::size_t c, std::size_t s) {
  const T* x = x_dev.get();
  const T* e = e_dev.get();
  T* y = y_dev.get();
  if (c == 0 || s == 0) return;
  cuda_impl::launch_n(be, n * c * s, cuda_impl::add_over_channels_op<T>{x, e, y, c, s});
}

// de[n, s] += sum_c d[n, c, s]
template <class T>
void add_channel_sums(const gpu& be, dcptr<T> d_dev, device_ptr<T> de_dev,
                      std::size_t n, std::size_t c, std::size_t s) {
  const T* d = d_dev.get();
  T* de = de_dev.get();
  cuda_impl::launch_n(be, n * s, cuda_impl::add_channel_sums_op<T>{d, de, c, s});
}

}  // namespace cpdiff::ops
