#pragma once
// Flat parameter vectors in and out of a 1-D conv stack: rows [N, n] zero-padded to [N, 1, len], and the
// reverse crop. The autoencoders pad their input and crop their output; the crop's adjoint is the pad.
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

// out [N, 1, len] = x [N, n] followed by zeros (len >= n).
template <class T, class B>
tensor_view<const T, memory_space_t<B>> pad_rows(const B& be, tensor_view<const T, memory_space_t<B>> x, std::size_t n,
                                                 std::size_t len, tensor<T, B>& out) {
  const std::size_t rows = x.size() / n;
  out.resize({rows, 1, len});
  fill(be, out.view(), T(0));
  copy_rows(be, x.data(), n, out.data(), len, rows, n);
  return out.cview();
}

// out [N, n] = the first n of each row of y [N, 1, len].
template <class T, class B>
tensor_view<const T, memory_space_t<B>> crop_rows(const B& be, tensor_view<const T, memory_space_t<B>> y, std::size_t n,
                                                  tensor<T, B>& out) {
  const std::size_t rows = y.dim(0), len = y.size() / rows;
  out.resize({rows, n});
  copy_rows(be, y.data(), len, out.data(), n, rows, n);
  return out.cview();
}

}  // namespace cpdiff::models
