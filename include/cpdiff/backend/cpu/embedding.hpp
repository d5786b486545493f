#pragma once
// CPU kernels of the embedding lookup: a gather of rows of a table and its adjoint, a scatter-add.
//   idx [n] (int32 or int64)   table [num, dim]   y [n, dim]
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

template <embedding_index I>
std::optional<index_violation> find_index_out_of_range(cpu, const I* idx, std::size_t n, std::size_t num) {
  for (std::size_t i = 0; i < n; ++i)
    if (idx[i] < 0 || static_cast<std::uint64_t>(idx[i]) >= num) return index_violation{i, std::int64_t(idx[i])};
  return std::nullopt;
}

// y[i, :] = table[idx[i], :]   (indices already checked)
template <class T, embedding_index I>
void embedding_gather(cpu, const I* idx, std::size_t n, const T* table, std::size_t dim, T* y) {
  const auto nn = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for schedule(static) num_threads(team_for(n * dim)) if (team_for(n * dim) > 1)
  for (std::ptrdiff_t i = 0; i < nn; ++i) {
    const T* src = table + static_cast<std::size_t>(idx[i]) * dim;
    T* dst = y + static_cast<std::size_t>(i) * dim;
#pragma omp simd
    for (std::size_t j = 0; j < dim; ++j) dst[j] = src[j];
  }
}

// dtable[idx[i], :] += dy[i, :]; repeated indices add up. Serial over i (two rows may hit the same
// table row), vectorised along dim: the lookups of a training step are few.
template <class T, embedding_index I>
void embedding_scatter_add(cpu, const I* idx, std::size_t n, const T* dy, std::size_t dim, T* dtable) {
  for (std::size_t i = 0; i < n; ++i) {
    T* dst = dtable + static_cast<std::size_t>(idx[i]) * dim;
    const T* src = dy + i * dim;
#pragma omp simd
    for (std::size_t j = 0; j < dim; ++j) dst[j] += src[j];
  }
}

}  // namespace cpdiff::ops
