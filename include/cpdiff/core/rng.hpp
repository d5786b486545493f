#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
// Element i of stream s under seed k is a pure function of (k, s, i): the same numbers on any
// backend and any thread count, and no generator state to carry between kernels.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

#include "cpdiff/core/host_device.hpp"

namespace cpdiff {

struct philox_block {
  std::uint32_t v[4];
};

CPDIFF_HD inline philox_block philox4x32(std::uint64_t key, std::uint64_t counter_lo, std::uint64_t counter_hi) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  std::uint32_t c0 = static_cast<std::uint32_t>(counter_lo), c1 = static_cast<std::uint32_t>(counter_lo >> 32);
  std::uint32_t c2 = static_cast<std::uint32_t>(counter_hi), c3 = static_cast<std::uint32_t>(counter_hi >> 32);
  std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += w0;
    k1 += w1;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in the open interval (0, 1), 24 bits: never 0, so log() below is finite.
CPDIFF_HD inline float u32_to_unit(std::uint32_t u) { return (static_cast<float>(u >> 8) + 0.5f) * (1.0f / 16777216.0f); }

// The i-th uniform (0,1) of stream `stream` under `seed`.
CPDIFF_HD inline float philox_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t i) {
  const philox_block b = philox4x32(seed, i >> 2, stream);
  return u32_to_unit(b.v[i & 3]);
}

// The i-th standard normal of stream `stream` under `seed` (Box-Muller on one Philox block per pair).
// Computed in double and rounded to float once: the float log / sin / cos of glibc and of CUDA differ in
// the last bits, the double ones agree to ~1 ulp of double, so the float results are the same on both
// backends except when a value falls within 1e-16 of a float rounding boundary (~1 in 5e8 draws).
// Normals 2p and 2p + 1 of the stream are r cos th and r sin th of one Philox block (pair p).
struct box_muller_polar {
  double r, th;
};
CPDIFF_HD inline box_muller_polar philox_polar(std::uint64_t seed, std::uint64_t stream, std::uint64_t pair) {
  const philox_block b = philox4x32(seed, pair, stream ^ 0x8000000000000000ull);
  const double u1 = u32_to_unit(b.v[0]), u2 = u32_to_unit(b.v[1]);
  return {std::sqrt(-2.0 * std::log(u1)), 2.0 * std::numbers::pi * u2};
}
// One normal: only the cos or the sin it needs.
CPDIFF_HD inline float philox_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t i) {
  const box_muller_polar p = philox_polar(seed, stream, i >> 1);
  return static_cast<float>((i & 1) ? p.r * std::sin(p.th) : p.r * std::cos(p.th));
}
// Both normals of pair p, one Philox block and one log for two (what a fill of many uses).
struct normal_pair {
  float even, odd;
};
CPDIFF_HD inline normal_pair philox_normal_pair(std::uint64_t seed, std::uint64_t stream, std::uint64_t pair) {
  const box_muller_polar p = philox_polar(seed, stream, pair);
  return {static_cast<float>(p.r * std::cos(p.th)), static_cast<float>(p.r * std::sin(p.th))};
}

// A seed plus a stream counter: each draw takes a fresh stream, so successive draws are independent
// and a whole run is reproducible from the seed alone. Save/restore `next_stream` to resume exactly.
// `first_sample`: in data-parallel training (train/data_parallel.hpp) a process holds rows
// [first_sample, first_sample + N) of the global batch; per-sample draws (training noise, timesteps)
// start their Philox counter at sample_offset(elements per sample), so that each row gets the numbers
// it would get in one process on the whole batch. 0 outside data-parallel training.
struct rng {
  std::uint64_t seed = 0;
  std::uint64_t next_stream = 0;
  std::uint64_t first_sample = 0;
  std::uint64_t take_stream() { return next_stream++; }
  std::uint64_t sample_offset(std::size_t per_sample) const { return first_sample * per_sample; }
};

}  // namespace cpdiff
