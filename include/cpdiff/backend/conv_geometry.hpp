#pragma once
// Sliding-window geometry shared by every backend's convolution and pooling kernels.
//
// conv_geometry describes a (1-D or 2-D) convolution in PyTorch's layout, one struct for both:
//   x [n, c_in, in_h, in_w]   weight [c_out, c_in, k_h, k_w]   y [n, c_out, out_h, out_w]
//   y[b, o, i, j] = sum_{c, p, q} w[o, c, p, q] * x[b, c, i*stride_h - pad_h + p*dil_h, j*stride_w - pad_w + q*dil_w]
// A 1-D convolution is the case in_h = out_h = k_h = 1 (conv1d_geometry below). A transposed
// convolution is the adjoint of the convolution with the same weight, so it uses the same struct with
// the roles of x and y swapped (conv_transpose1d_geometry): its input is this struct's y, its output x.
// Kernels lower a sample to its column matrix col [c_in*k_h*k_w, out_h*out_w] (im2col) and multiply.
#include <cstddef>

#include "cpdiff/core/error.hpp"

namespace cpdiff {

// How a backend computes a convolution: its own choice by size (automatic), or forced, for tests and
// benchmarks. The CPU backend lowers to im2col + GEMM, or for 1-D kernels of 3 at stride 1 with 32 channels or
// more to Winograd F(4, 3) (backend/cpu/winograd.hpp: half the multiply-adds); a direct loop, measured, gained
// at most 1.8x and only on stride-1 layers with one or two output channels, a negligible share of the p-diff
// autoencoder's time, and lost on strided ones. The CUDA backend has a direct kernel for few channels, and reads
// winograd as gemm.
enum class conv_algorithm { automatic, gemm, direct, winograd };

struct conv_geometry {
  std::size_t n = 0;  // batch
  std::size_t c_in = 0, c_out = 0;
  std::size_t in_h = 1, in_w = 0;
  std::size_t out_h = 1, out_w = 0;
  std::size_t k_h = 1, k_w = 1;
  std::size_t stride_h = 1, stride_w = 1;
  std::size_t pad_h = 0, pad_w = 0;
  std::size_t dil_h = 1, dil_w = 1;
  conv_algorithm algo = conv_algorithm::automatic;

  constexpr std::size_t in_plane() const { return in_h * in_w; }
  constexpr std::size_t out_plane() const { return out_h * out_w; }
  constexpr std::size_t in_sample() const { return c_in * in_plane(); }    // elements of x per sample
  constexpr std::size_t out_sample() const { return c_out * out_plane(); }  // elements of y per sample
  constexpr std::size_t col_rows() const { return c_in * k_h * k_w; }       // also the weight's row length
  constexpr std::size_t col_cols() const { return out_plane(); }
  constexpr std::size_t weight_size() const { return c_out * col_rows(); }
  // A 1x1 kernel with unit stride and no padding: the column matrix is x itself.
  constexpr bool pointwise() const {
    return k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// Output length of a convolution along one axis (PyTorch's formula), or 0 when the padded input is
// shorter than the dilated kernel.
constexpr std::size_t conv_out_size(std::size_t in, std::size_t k, std::size_t stride, std::size_t pad,
                                    std::size_t dil) {
  const std::size_t span = dil * (k - 1) + 1;
  if (in + 2 * pad < span) return 0;
  return (in + 2 * pad - span) / stride + 1;
}

// Output length of a transposed convolution: (in - 1)*stride - 2*pad + dil*(k - 1) + output_pad + 1,
// or 0 when that is not positive.
constexpr std::size_t conv_transpose_out_size(std::size_t in, std::size_t k, std::size_t stride, std::size_t pad,
                                              std::size_t out_pad, std::size_t dil) {
  if (in == 0) return 0;
  const std::size_t grow = (in - 1) * stride + dil * (k - 1) + out_pad + 1;
  return grow > 2 * pad ? grow - 2 * pad : 0;
}

// x [n, c_in, len] -> y [n, c_out, conv_out_size(len, ...)]
constexpr conv_geometry conv1d_geometry(std::size_t n, std::size_t c_in, std::size_t c_out, std::size_t len,
                                        std::size_t k, std::size_t stride, std::size_t pad, std::size_t dil) {
  conv_geometry g;
  g.n = n, g.c_in = c_in, g.c_out = c_out;
  g.in_w = len, g.out_w = conv_out_size(len, k, stride, pad, dil);
  g.k_w = k, g.stride_w = stride, g.pad_w = pad, g.dil_w = dil;
  return g;
}

// The transposed convolution x [n, c_in, len] -> y [n, c_out, conv_transpose_out_size(len, ...)] with weight
// [c_in, c_out, k], as the convolution it is the adjoint of: that one maps [n, c_out, len_out] to
// [n, c_in, len] with weight [c_in, c_out, k], so its c_in is our c_out and its out_w is our len.
constexpr conv_geometry conv_transpose1d_geometry(std::size_t n, std::size_t c_in, std::size_t c_out,
                                                  std::size_t len, std::size_t k, std::size_t stride,
                                                  std::size_t pad, std::size_t out_pad, std::size_t dil) {
  conv_geometry g;
  g.n = n, g.c_in = c_out, g.c_out = c_in;
  g.in_w = conv_transpose_out_size(len, k, stride, pad, out_pad, dil), g.out_w = len;
  g.k_w = k, g.stride_w = stride, g.pad_w = pad, g.dil_w = dil;
  return g;
}

// x [n, c_in, h, w] -> y [n, c_out, out_h, out_w], square kernel, same stride / padding / dilation on both axes.
constexpr conv_geometry conv2d_geometry(std::size_t n, std::size_t c_in, std::size_t c_out, std::size_t h,
                                        std::size_t w, std::size_t k, std::size_t stride, std::size_t pad,
                                        std::size_t dil) {
  conv_geometry g;
  g.n = n, g.c_in = c_in, g.c_out = c_out;
  g.in_h = h, g.in_w = w;
  g.out_h = conv_out_size(h, k, stride, pad, dil), g.out_w = conv_out_size(w, k, stride, pad, dil);
  g.k_h = g.k_w = k, g.stride_h = g.stride_w = stride, g.pad_h = g.pad_w = pad, g.dil_h = g.dil_w = dil;
  return g;
}

// Average pooling over windows of k_h x k_w with the given strides and no padding, on `planes`
// independent images (n * channels): x [planes, in_h, in_w] -> y [planes, out_h, out_w].
struct pool2d_geometry {
  std::size_t planes = 0;
  std::size_t in_h = 0, in_w = 0;
  std::size_t out_h = 0, out_w = 0;
  std::size_t k_h = 1, k_w = 1;
  std::size_t stride_h = 1, stride_w = 1;
};

}  // namespace cpdiff
