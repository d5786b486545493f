#pragma once
// im2col / col2im on the GPU, one for one with backend/cpu/im2col.hpp, plus batched forms that lower
// nb samples at once for the strided-batched GEMMs of conv.cuh.
//   x [c_in, in_h, in_w]  <->  col [c_in*k_h*k_w, out_h*out_w]
//   col[(c*k_h + p)*k_w + q, i*out_w + j] = x[c, i*stride_h - pad_h + p*dil_h, j*stride_w - pad_w + q*dil_w]
// (zero where the index falls in the padding). The batched column matrix of samples [b0, b0 + nb) is
//   col [R, nb, P]: row r holds the nb samples' rows side by side (R = c_in*k_h*k_w, P = out_h*out_w),
// so that sample b's matrix is col + b*P with leading dimension nb*P, and the whole is one [R, nb*P]
// matrix for the weight gradient's single GEMM.
// col2im is a gather: one thread per input element sums the column entries read from it (no atomics,
// repeatable).
#include <cstddef>

#include "cpdiff/backend/conv_geometry.hpp"
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/norms.cuh"  // cuda_reduce: launch sizes

namespace cpdiff::ops {

namespace im2col_cuda_detail {

inline constexpr unsigned block = 256;

// One thread per column entry (r, b, p) of col [R, nb, P]; x holds the nb samples [nb, c_in, in_h, in_w].
template <class T>
__global__ void im2col_kernel(conv_geometry g, std::size_t nb, const T* x, T* col) {
  const std::size_t P = g.out_h * g.out_w, kk = g.k_h * g.k_w, rows = g.c_in * kk;
  const std::size_t total = rows * nb * P, in_plane = g.in_h * g.in_w;
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t pos = e % P, b = (e / P) % nb, r = e / (P * nb);
    const std::size_t c = r / kk, p = (r / g.k_w) % g.k_h, q = r % g.k_w;
    const std::size_t i = pos / g.out_w, j = pos % g.out_w;
    const auto ih = static_cast<std::ptrdiff_t>(i * g.stride_h + p * g.dil_h) - static_cast<std::ptrdiff_t>(g.pad_h);
    const auto iw = static_cast<std::ptrdiff_t>(j * g.stride_w + q * g.dil_w) - static_cast<std::ptrdiff_t>(g.pad_w);
    const bool inside = ih >= 0 && ih < static_cast<std::ptrdiff_t>(g.in_h) && iw >= 0 &&
                        iw < static_cast<std::ptrdiff_t>(g.in_w);
    col[e] = inside ? x[(b * g.c_in + c) * in_plane + static_cast<std::size_t>(ih) * g.in_w + static_cast<std::size_t>(iw)]
                    : T(0);
  }
}

// The outputs o along one axis that read input position h through tap t: o*stride - pad + t*dil = h.
// Returns false when there is none in [0, out).
__device__ inline bool output_of(std::size_t h, std::size_t t, std::size_t stride, std::size_t pad, std::size_t dil,
                                 std::size_t out, std::size_t& o) {
  const auto s = static_cast<std::ptrdiff_t>(h + pad) - static_cast<std::ptrdiff_t>(t * dil);  // o*stride
  if (s < 0 || s % static_cast<std::ptrdiff_t>(stride) != 0) return false;
  o = static_cast<std::size_t>(s) / stride;
  return o < out;
}

// One thread per input element (b, c, h, w) of x [nb, c_in, in_h, in_w] = col2im(col [R, nb, P]), overwriting x.
template <class T>
__global__ void col2im_kernel(conv_geometry g, std::size_t nb, const T* col, T* x) {
  const std::size_t P = g.out_h * g.out_w, in_plane = g.in_h * g.in_w, total = nb * g.c_in * in_plane;
  const std::size_t ld = nb * P;  // col's row length
  for (std::size_t e = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; e < total;
       e += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t w = e % g.in_w, h = (e / g.in_w) % g.in_h, c = (e / in_plane) % g.c_in, b = e / (in_plane * g.c_in);
    const T* cb = col + b * P;
    T acc = T(0);
    for (std::size_t p = 0; p < g.k_h; ++p) {
      std::size_t i;
      if (!output_of(h, p, g.stride_h, g.pad_h, g.dil_h, g.out_h, i)) continue;
      for (std::size_t q = 0; q < g.k_w; ++q) {
        std::size_t j;
        if (!output_of(w, q, g.stride_w, g.pad_w, g.dil_w, g.out_w, j)) continue;
        acc += cb[((c * g.k_h + p) * g.k_w + q) * ld + i * g.out_w + j];
      }
    }
    x[e] = acc;
  }
}

}  // namespace im2col_cuda_detail

// col [R, nb, P] = im2col of the nb samples x [nb, c_in, in_h, in_w] (see the header comment for the layout)
template <class T>
void im2col_batched(const gpu& be, const conv_geometry& g, std::size_t nb, const T* x, T* col) {
  const std::size_t total = g.col_rows() * nb * g.col_cols();
  if (total == 0) return;
  constexpr unsigned block = im2col_cuda_detail::block;
  im2col_cuda_detail::im2col_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, nb, x, col);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// x [nb, c_in, in_h, in_w] = col2im(col [R, nb, P]): overwrites x with the sums.
template <class T>
void col2im_batched(const gpu& be, const conv_geometry& g, std::size_t nb, const T* col, T* x) {
  const std::size_t total = nb * g.in_sample();
  if (total == 0) return;
  constexpr unsigned block = im2col_cuda_detail::block;
  im2col_cuda_detail::col2im_kernel<<<cuda_reduce::grid_for(total, block), block, 0, be.stream>>>(g, nb, col, x);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// col [c_in*k_h*k_w, out_h*out_w] = im2col(x [c_in, in_h, in_w])   (one sample, as the CPU version)
template <class T>
void im2col(const gpu& be, const conv_geometry& g, const T* x, T* col) {
  im2col_batched(be, g, std::size_t(1), x, col);
}

// x [c_in, in_h, in_w] = col2im(col [c_in*k_h*k_w, out_h*out_w]): overwrites x with the sums.
template <class T>
void col2im(const gpu& be, const conv_geometry& g, const T* col, T* x) {
  col2im_batched(be, g, std::size_t(1), col, x);
}

}  // namespace cpdiff::ops
