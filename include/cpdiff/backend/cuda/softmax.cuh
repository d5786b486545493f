#pragma once
// CUDA row softmax over x [rows, n] and its backward: one warp per row, sums in cuda_reduce::acc_t.
#include <cstddef>

#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/norms.cuh"  // cuda_reduce: warp sums and launch sizes
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

namespace softmax_cuda_detail {

inline constexpr unsigned block = 256;  // 8 rows per block

template <class A>
__device__ inline A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) {
    const A other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  return v;
}

template <class T>
__global__ void softmax_rows_forward_kernel(std::size_t rows, std::size_t n, const T* x, T* y) {
  using A = cuda_reduce::acc_t<T>;
  const unsigned lane = threadIdx.x & 31u;
  const std::size_t warps = (std::size_t(gridDim.x) * blockDim.x) >> 5;
  for (std::size_t r = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T peak = xr[0];
    for (std::size_t j = lane; j < n; j += 32) peak = xr[j] > peak ? xr[j] : peak;
    peak = warp_max(peak);
    A total = 0;
    for (std::size_t j = lane; j < n; j += 32) total += A(yr[j] = exp(xr[j] - peak));
    total = __shfl_sync(0xffffffffu, cuda_reduce::warp_sum(total), 0);
    const T inv = T(A(1) / total);
    for (std::size_t j = lane; j < n; j += 32) yr[j] *= inv;
  }
}

template <class T>
__global__ void softmax_rows_backward_kernel(std::size_t rows, std::size_t n, const T* y, const T* dy, T* dx) {
  using A = cuda_reduce::acc_t<T>;
  const unsigned lane = threadIdx.x & 31u;
  const std::size_t warps = (std::size_t(gridDim.x) * blockDim.x) >> 5;
  for (std::size_t r = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const std::size_t o = r * n;
    A dot = 0;
    for (std::size_t j = lane; j < n; j += 32) dot += A(dy[o + j]) * A(y[o + j]);
    const T d = T(__shfl_sync(0xffffffffu, cuda_reduce::warp_sum(dot), 0));
    for (std::size_t j = lane; j < n; j += 32) dx[o + j] = y[o + j] * (dy[o + j] - d);
  }
}

}  // namespace softmax_cuda_detail

// y [rows, n] = softmax(x) along n
template <class T>
void softmax_rows_forward(const gpu& be, std::size_t rows, std::size_t n, dcptr<T> x, device_ptr<T> y) {
  if (rows == 0 || n == 0) return;
  constexpr unsigned block = softmax_cuda_detail::block;
  softmax_cuda_detail::softmax_rows_forward_kernel<<<cuda_reduce::grid_for(rows * 32, block), block, 0, be.stream>>>(
      rows, n, x.get(), y.get());
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// dx [rows, n] = y (dy - <dy, y>) per row (overwrites dx)
template <class T>
void softmax_rows_backward(const gpu& be, std::size_t rows, std::size_t n, dcptr<T> y, dcptr<T> dy,
                           device_ptr<T> dx) {
  if (rows == 0 || n == 0) return;
  constexpr unsigned block = softmax_cuda_detail::block;
  softmax_cuda_detail::softmax_rows_backward_kernel<<<cuda_reduce::grid_for(rows * 32, block), block, 0, be.stream>>>(
      rows, n, y.get(), dy.get(), dx.get());
  CPDIFF_CUDA_CHECK_LAUNCH();
}

}  // namespace cpdiff::ops
