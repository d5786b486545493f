#pragma once
// CUDA average-pooling kernels, one for one with backend/cpu/pooling.hpp: windowed 2-D average pooling
// (no padding) and the global average over each (sample, channel) row.
// Backward passes gather instead of scatter: one thread per input element sums the outputs whose
// window holds it, so overlapping windows (stride < k) need no atomics and the sums are repeatable.
#include <cstddef>
#include <type_traits>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/norms.cuh"  // cuda_reduce: launch sizes and warp sums

namespace cpdiff::ops {

namespace pooling_cuda_detail {

inline constexpr unsigned block = 256;

// One thread per output (plane, i, j).
template <class T>
__global__ void avg_pool2d_forward_kernel(pool2d_geometry g, const T* x, T* y) {
  const std::size_t total = g.planes * g.out_h * g.out_w;
  const T inv = T(1) / T(g.k_h * g.k_w);
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t j = e % g.out_w, i = (e / g.out_w) % g.out_h, pl = e / (g.out_w * g.out_h);
    const T* xw = x + pl * g.in_h * g.in_w + (i * g.stride_h) * g.in_w + j * g.stride_w;  // window corner
    T acc = T(0);
    for (std::size_t p = 0; p < g.k_h; ++p)
      for (std::size_t q = 0; q < g.k_w; ++q) acc += xw[p * g.in_w + q];
    y[e] = acc * inv;
  }
}

// The outputs o along one axis whose window [o*stride, o*stride + k) holds input position h: o in [lo, hi).
__device__ inline void windows_holding(std::size_t h, std::size_t k, std::size_t stride, std::size_t out,
                                       std::size_t& lo, std::size_t& hi) {
  lo = h + 1 > k ? (h + 1 - k + stride - 1) / stride : 0;  // first o with o*stride + k > h
  hi = h / stride + 1;                                     // one past the last o with o*stride <= h
  if (hi > out) hi = out;
  if (lo > hi) lo = hi;
}

// One thread per input (plane, h, w): dx = sum over the windows holding it of dy / (k_h*k_w).
template <class T>
__global__ void avg_pool2d_backward_kernel(pool2d_geometry g, const T* dy, T* dx) {
  const std::size_t total = g.planes * g.in_h * g.in_w;
  const T inv = T(1) / T(g.k_h * g.k_w);
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t w = e % g.in_w, h = (e / g.in_w) % g.in_h, pl = e / (g.in_w * g.in_h);
    std::size_t i0, i1, j0, j1;
    windows_holding(h, g.k_h, g.stride_h, g.out_h, i0, i1);
    windows_holding(w, g.k_w, g.stride_w, g.out_w, j0, j1);
    const T* yp = dy + pl * g.out_h * g.out_w;
    T acc = T(0);
    for (std::size_t i = i0; i < i1; ++i)
      for (std::size_t j = j0; j < j1; ++j) acc += yp[i * g.out_w + j] * inv;
    dx[e] = acc;
  }
}

// One warp per row of x [rows, len]; sums in cuda_reduce::acc_t.
template <class T>
__global__ void global_avg_pool_forward_kernel(std::size_t rows, std::size_t len, const T* x, T* y) {
  using A = cuda_reduce::acc_t<T>;
  const unsigned lane = threadIdx.x & 31u;
  const std::size_t warps = (std::size_t(gridDim.x) * blockDim.x) >> 5;
  for (std::size_t r = (blockIdx.x * std::size_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + r * len;
    A acc = 0;
    for (std::size_t j = lane; j < len; j += 32) acc += A(xr[j]);
    acc = cuda_reduce::warp_sum(acc);
    if (lane == 0) y[r] = T(acc / A(len));
  }
}

template <class T>
__global__ void global_avg_pool_backward_kernel(std::size_t rows, std::size_t len, const T* dy, T* dx) {
  const T inv = T(1) / T(len);
  const std::size_t total = rows * len;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x)
    dx[e] = dy[e / len] * inv;
}

}  // namespace pooling_cuda_detail

// y [planes, out_h, out_w] = mean of x [planes, in_h, in_w] over each k_h x k_w window
template <class T>
void avg_pool2d_forward(const gpu& be, const pool2d_geometry& g, dcptr<T> x_dev,
                        device_ptr<T> y_dev) {
  const T* x = x_dev.get();
  T* y = y_dev.get();
  const std::size_t total = g.planes * g.out_h * g.out_w;
  if (total == 0) return;
  constexpr unsigned block = pooling_cuda_detail::block;
  pooling_cuda_detail::avg_pool2d_forward_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, x, y);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// dx [planes, in_h, in_w] = sum over the windows containing each position of dy / (k_h*k_w) (overwrites dx)
template <class T>
void avg_pool2d_backward(const gpu& be, const pool2d_geometry& g, dcptr<T> dy_dev,
                         device_ptr<T> dx_dev) {
  const T* dy = dy_dev.get();
  T* dx = dx_dev.get();
  const std::size_t total = g.planes * g.in_h * g.in_w;
  if (total == 0) return;
  constexpr unsigned block = pooling_cuda_detail::block;
  pooling_cuda_detail::avg_pool2d_backward_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, dy,
                                                                                                              dx);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// y [rows] = mean of x [rows, len] along len
template <class T>
void global_avg_pool_forward(const gpu& be, std::size_t rows, std::size_t len,
                             dcptr<T> x_dev, device_ptr<T> y_dev) {
  const T* x = x_dev.get();
  T* y = y_dev.get();
  if (rows == 0 || len == 0) return;
  constexpr unsigned block = pooling_cuda_detail::block;  // block / 32 rows per block
  pooling_cuda_detail::global_avg_pool_forward_kernel<<<cuda_reduce::grid_for(rows * 32, block), block, 0,
                                                        be.stream>>>(rows, len, x, y);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// dx [rows, len] = dy [rows] / len, broadcast along len (overwrites dx)
template <class T>
void global_avg_pool_backward(const gpu& be, std::size_t rows, std::size_t len,
                              dcptr<T> dy_dev, device_ptr<T> dx_dev) {
  const T* dy = dy_dev.get();
  T* dx = dx_dev.get();
  const std::size_t total = rows * len;
  if (total == 0) return;
  constexpr unsigned block = pooling_cuda_detail::block;
  pooling_cuda_detail::global_avg_pool_backward_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(
      rows, len, dy, dx);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

}  // namespace cpdiff::ops
