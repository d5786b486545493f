#pragma once
// CUDA kernels for concatenation along one dimension, one overload per kernel of backend/cpu/concat.hpp.
// With the dims before and after the joined one folded, a [outer, na, inner] and b [outer, nb, inner]
// are two column blocks of y [outer, (na + nb) * inner]: each side is one strided 2-D copy.
#include <cstddef>
#include <type_traits>

#include "cpdiff/backend/cuda/elementwise.cuh"  // copy_rows
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

// y[o, :na] = a[o], y[o, na:] = b[o]
template <class T>
void concat_forward(const gpu& be, dcptr<T> a_dev,
                    dcptr<T> b_dev, device_ptr<T> y_dev, std::size_t outer,
                    std::size_t na, std::size_t nb,
                    std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  copy_rows(be, a_dev, sa, y_dev, sy, outer, sa);
  copy_rows(be, b_dev, sb, y_dev + sa, sy, outer, sb);
}

// da[o] = dy[o, :na], db[o] = dy[o, na:]
template <class T>
void concat_backward(const gpu& be, dcptr<T> dy_dev, device_ptr<T> da_dev,
                     device_ptr<T> db_dev, std::size_t outer, std::size_t na, std::size_t nb,
                     std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  copy_rows(be, dy_dev, sy, da_dev, sa, outer, sa);
  copy_rows(be, dy_dev + sa, sy, db_dev, sb, outer, sb);
}

}  // namespace cpdiff::ops
