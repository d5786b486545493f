#pragma once
// CPU kernel of dropout: y = x * keep / (1 - p), keep[i] = (U_i >= p) with U_i the i-th uniform of
// Philox stream `stream` under `seed` (core/rng.hpp). The mask is a pure function of
// (seed, stream, i): backward regenerates it instead of storing it, and any backend or thread
// count draws the same mask.
#include <cstddef>
#include <cstdint>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"

namespace cpdiff::ops {

// y[i] = philox_uniform(seed, stream, i) < p ? 0 : x[i] / (1 - p), for i < n (p in [0, 1)).
// One Philox block gives the uniforms of four consecutive elements.  y may alias x.
template <class T>
void dropout_mask_apply(cpu, const T* x, T* y, std::size_t n, double p, std::uint64_t seed, std::uint64_t stream) {
  const T scale = T(1.0 / (1.0 - p));
  const auto blocks = static_cast<std::ptrdiff_t>((n + 3) / 4);
#pragma omp parallel for schedule(static) num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t bi = 0; bi < blocks; ++bi) {
    const auto b = static_cast<std::uint64_t>(bi);
    const philox_block r = philox4x32(seed, b, stream);
    for (std::size_t lane = 0; lane < 4; ++lane) {
      const std::size_t i = b * 4 + lane;
      if (i >= n) break;
      const bool drop = static_cast<double>(u32_to_unit(r.v[lane])) < p;
      y[i] = drop ? T(0) : x[i] * scale;
    }
  }
}

}  // namespace cpdiff::ops
