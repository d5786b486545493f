#pragma once
// CPU kernels for concatenating two tensors along one dimension and splitting the gradient back.
// Any concat is a 3-D one once the dims before and after the joined one are folded:
//   a [outer, na, inner]   b [outer, nb, inner]   y [outer, na + nb, inner]
// so each outer index copies one contiguous block of a, then one of b.
#include <algorithm>
#include <cstddef>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// y[o, :na] = a[o], y[o, na:] = b[o]   (rows of inner elements)
template <class T>
void concat_forward(cpu, const T* a, const T* b, T* y, std::size_t outer, std::size_t na, std::size_t nb,
                    std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(outer);
#pragma omp parallel for num_threads(team_for(outer * sy)) if (team_for(outer * sy) > 1)
  for (std::ptrdiff_t o = 0; o < n; ++o) {
    const std::size_t i = static_cast<std::size_t>(o);
    std::copy(a + i * sa, a + (i + 1) * sa, y + i * sy);
    std::copy(b + i * sb, b + (i + 1) * sb, y + i * sy + sa);
  }
}

// da[o] = dy[o, :na], db[o] = dy[o, na:]
template <class T>
void concat_backward(cpu, const T* dy, T* da, T* db, std::size_t outer, std::size_t na, std::size_t nb,
                     std::size_t inner) {
  const std::size_t sa = na * inner, sb = nb * inner, sy = sa + sb;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(outer);
#pragma omp parallel for num_threads(team_for(outer * sy)) if (team_for(outer * sy) > 1)
  for (std::ptrdiff_t o = 0; o < n; ++o) {
    const std::size_t i = static_cast<std::size_t>(o);
    std::copy(dy + i * sy, dy + i * sy + sa, da + i * sa);
    std::copy(dy + i * sy + sa, dy + (i + 1) * sy, db + i * sb);
  }
}

}  // namespace cpdiff::ops
