#pragma once
// CUDA kernels for concatenation along one dimension, one overload per kernel of backend/cpu/concat.hpp.
// With the dims before and after the joined one folded, a [outer, na, inner] and b [outer, nb, inner]
// are two column blocks of y [outer, (na + nb) * inner]: each side is one strided 2-D copy.
#include <cstddef>

#include "cpdiff/backend/cuda/elementwise.cuh"  // copy_rows
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

// y[o, :na] = a[o], y[o, na:] = b[o]
template <class T>
void concat_forward(const cuda& be, const T* a, const T* b, T* y, std::size_t outer, std::size_t na, std::size_t nb,
                    std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  copy_rows(be, a, sa, y, sy, outer, sa);
  copy_rows(be, b, sb, y + sa, sy, outer, sb);
}

// da[o] = dy[o, :na], db[o] = dy[o, na:]
template <class T>
void concat_backward(const cuda& be, const T* dy, T* da, T* db, std::size_t outer, std::size_t na, std::size_t nb,
                     std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  copy_rows(be, dy, sy, da, sa, outer, sa);
  copy_rows(be, dy + sa, sy, db, sb, outer, sb);
}

}  // namespace cpdiff::ops
