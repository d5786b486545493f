#pragma once
// CPU kernels for a per-sample vector broadcast over channels (the U-Net's timestep embedding).
#include <cstddef>

#include "cpdiff/backend/cpu/threads.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// y[n, c, s] = x[n, c, s] + e[n, s]
template <class T>
void add_over_channels(cpu, const T* x, const T* e, T* y, std::size_t n, std::size_t c, std::size_t s) {
#pragma omp parallel for collapse(2) num_threads(team_for(n * c * s)) if (team_for(n * c * s) > 1)
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < c; ++j) {
      const T* xr = x + (i * c + j) * s;
      const T* er = e + i * s;
      T* yr = y + (i * c + j) * s;
#pragma omp simd
      for (std::size_t k = 0; k < s; ++k) yr[k] = xr[k] + er[k];
    }
}

// de[n, s] += sum_c d[n, c, s]
template <class T>
void add_channel_sums(cpu, const T* d, T* de, std::size_t n, std::size_t c, std::size_t s) {
#pragma omp parallel for num_threads(team_for(n * c * s)) if (team_for(n * c * s) > 1)
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < c; ++j) {
      const T* dr = d + (i * c + j) * s;
      T* er = de + i * s;
#pragma omp simd
      for (std::size_t k = 0; k < s; ++k) er[k] += dr[k];
    }
}

}  // namespace cpdiff::ops
