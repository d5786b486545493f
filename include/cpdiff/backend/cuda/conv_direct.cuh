#pragma once
// The direct CUDA convolution kernels of conv.cuh (the counterpart of backend/cpu/conv_direct.hpp), for few
// output channels and a short kernel row, where a GEMM would have little work per column:
//   forward       y[b, o, i, j] = (bias[o]) + sum_{c, p, q} w[o, c, p, q] x[b, c, ih, iw]   one thread per output
//   data grad     dx[b, c, ih, iw] = sum over the taps that read it of w * dy                 one thread per input (gather)
//   weight grad   dw[o, c, p, q] += sum_{b, i, j} dy[b, o, i, j] x[b, c, ih, iw]              two-stage reduction
//   with ih = i*stride_h - pad_h + p*dil_h, iw = j*stride_w - pad_w + q*dil_w, taps in the padding skipped.
// The weight gradient's blocks (weight element, slice of the n*P positions) write partial sums in double
// (acc_t) to the caller's workspace and a second kernel adds each element's slices in order: no atomics,
// repeatable. The blocks of one slice run side by side and read the same x / dy range, mostly from L2.
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cuda/im2col.cuh"  // output_of
#include "cpdiff/backend/cuda/norms.cuh"   // cuda_reduce: acc_t, block sums
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops::conv_cuda_detail {

using cuda_reduce::acc_t;

// Direct forward: one thread per output (b, o, i, j) of y [n, c_out, out_h, out_w].
template <class T>
__global__ void direct_forward_kernel(conv_geometry g, const T* x, const T* w, const T* bias, T* y) {
  const std::size_t P = g.out_h * g.out_w, in_plane = g.in_h * g.in_w, total = g.n * g.c_out * P;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t pos = e % P, o = (e / P) % g.c_out, b = e / (P * g.c_out);
    const std::size_t i = pos / g.out_w, j = pos % g.out_w;
    const T* xb = x + b * g.c_in * in_plane;
    const T* wo = w + o * g.c_in * g.k_h * g.k_w;
    T acc = bias ? bias[o] : T(0);
    for (std::size_t c = 0; c < g.c_in; ++c)
      for (std::size_t p = 0; p < g.k_h; ++p) {
        const auto ih = static_cast<std::ptrdiff_t>(i * g.stride_h + p * g.dil_h) - static_cast<std::ptrdiff_t>(g.pad_h);
        if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.in_h)) continue;
        const T* xr = xb + c * in_plane + static_cast<std::size_t>(ih) * g.in_w;
        const T* wr = wo + (c * g.k_h + p) * g.k_w;
        for (std::size_t q = 0; q < g.k_w; ++q) {
          const auto iw = static_cast<std::ptrdiff_t>(j * g.stride_w + q * g.dil_w) - static_cast<std::ptrdiff_t>(g.pad_w);
          if (iw >= 0 && iw < static_cast<std::ptrdiff_t>(g.in_w)) acc += wr[q] * xr[iw];
        }
      }
    y[e] = acc;
  }
}

// Direct data gradient: one thread per input element (b, c, h, w): dx = sum over the taps that read it.
template <class T>
__global__ void direct_backward_data_kernel(conv_geometry g, const T* dy, const T* w, T* dx) {
  const std::size_t P = g.out_h * g.out_w, in_plane = g.in_h * g.in_w, total = g.n * g.c_in * in_plane;
  const std::size_t kk = g.k_h * g.k_w;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t iw = e % g.in_w, ih = (e / g.in_w) % g.in_h, c = (e / in_plane) % g.c_in, b = e / (in_plane * g.c_in);
    const T* dyb = dy + b * g.c_out * P;
    T acc = T(0);
    for (std::size_t p = 0; p < g.k_h; ++p) {
      std::size_t i;
      if (!im2col_cuda_detail::output_of(ih, p, g.stride_h, g.pad_h, g.dil_h, g.out_h, i)) continue;
      for (std::size_t q = 0; q < g.k_w; ++q) {
        std::size_t j;
        if (!im2col_cuda_detail::output_of(iw, q, g.stride_w, g.pad_w, g.dil_w, g.out_w, j)) continue;
        for (std::size_t o = 0; o < g.c_out; ++o)
          acc += w[(o * g.c_in + c) * kk + p * g.k_w + q] * dyb[o * P + i * g.out_w + j];
      }
    }
    dx[e] = acc;
  }
}

// Direct weight gradient, stage 1: block (wi, s) sums dy[b, o, i, j] x[b, c, ih, iw] over slice s of the
// n*P positions m = b*P + i*out_w + j, for weight element wi = ((o*c_in + c)*k_h + p)*k_w + q.
template <class T>
__global__ void direct_wgrad_partial_kernel(conv_geometry g, std::size_t slices, const T* x, const T* dy,
                                            acc_t<T>* partial) {
  using A = acc_t<T>;
  const std::size_t P = g.out_h * g.out_w, in_plane = g.in_h * g.in_w, len = g.n * P;
  const std::size_t wi = blockIdx.x, s = blockIdx.y;
  const std::size_t q = wi % g.k_w, p = (wi / g.k_w) % g.k_h, c = (wi / (g.k_w * g.k_h)) % g.c_in,
                    o = wi / (g.k_w * g.k_h * g.c_in);
  const std::size_t m0 = s * len / slices, m1 = (s + 1) * len / slices;
  const auto off_h = static_cast<std::ptrdiff_t>(p * g.dil_h) - static_cast<std::ptrdiff_t>(g.pad_h);
  const auto off_w = static_cast<std::ptrdiff_t>(q * g.dil_w) - static_cast<std::ptrdiff_t>(g.pad_w);
  A acc = 0, unused = 0;
  for (std::size_t m = m0 + threadIdx.x; m < m1; m += blockDim.x) {
    const std::size_t b = m / P, pos = m % P, i = pos / g.out_w, j = pos % g.out_w;
    const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(i * g.stride_h) + off_h;
    const std::ptrdiff_t iw = static_cast<std::ptrdiff_t>(j * g.stride_w) + off_w;
    if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.in_h) || iw < 0 || iw >= static_cast<std::ptrdiff_t>(g.in_w))
      continue;
    acc += A(dy[(b * g.c_out + o) * P + pos]) *
           A(x[(b * g.c_in + c) * in_plane + static_cast<std::size_t>(ih) * g.in_w + static_cast<std::size_t>(iw)]);
  }
  cuda_reduce::block_sum2(acc, unused);
  if (threadIdx.x == 0) partial[wi * slices + s] = acc;
}

// Stage 2: dw[wi] += sum_s partial[wi, s], slices in order.
template <class T>
__global__ void direct_wgrad_finish_kernel(std::size_t weights, std::size_t slices, const acc_t<T>* partial, T* dw) {
  for (std::size_t wi = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; wi < weights;
       wi += std::size_t(gridDim.x) * blockDim.x) {
    acc_t<T> acc = 0;
    for (std::size_t s = 0; s < slices; ++s) acc += partial[wi * slices + s];
    dw[wi] += T(acc);
  }
}

}  // namespace cpdiff::ops::conv_cuda_detail
