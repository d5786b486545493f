#pragma once
// CPU element-wise kernels, random fills and reductions. Element-wise maths is written once as
// host/device functors (nn/activation_functors.hpp) and applied here by transform().
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "cpdiff/backend/cpu/threads.hpp"
#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::ops {

template <class T>
void fill(cpu, hview<T> y, T value) {
  std::fill(y.data(), y.data() + y.size(), value);
}

template <class T>
void copy(cpu, hcview<T> x, hview<T> y) {
  CPDIFF_CHECK(x.size() == y.size(), shape_error, "ops::copy", "source ", x.shape(), " and destination ", y.shape(),
               " differ in size");
  std::copy(x.data(), x.data() + x.size(), y.data());
}

// y += a * x
template <class T>
void axpy(cpu, T a, hcview<T> x, hview<T> y) {
  CPDIFF_ASSERT(x.size() == y.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size());
  const T* xp = x.data();
  T* yp = y.data();
#pragma omp parallel for simd num_threads(team_for(n)) if (parallel: team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) yp[i] += a * xp[i];
}

template <class T>
void scale(cpu, hview<T> y, T a) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size());
  T* yp = y.data();
#pragma omp parallel for simd num_threads(team_for(n)) if (parallel: team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) yp[i] *= a;
}

// y[r, :] += v for every row r of y [rows, n]   (a bias)
template <class T>
void add_row_vector(cpu, hview<T> y, hcview<T> v) {
  CPDIFF_ASSERT(y.rank() == 2 && v.size() == y.dim(1));
  const std::size_t rows = y.dim(0), n = y.dim(1);
  for (std::size_t r = 0; r < rows; ++r) {
    T* yr = y.data() + r * n;
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) yr[j] += v.data()[j];
  }
}

// s[j] += sum_r x[r, j]   (a bias gradient)
template <class T>
void add_column_sums(cpu, hcview<T> x, hview<T> s) {
  CPDIFF_ASSERT(x.rank() == 2 && s.size() == x.dim(1));
  const std::size_t rows = x.dim(0), n = x.dim(1);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x.data() + r * n;
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) s.data()[j] += xr[j];
  }
}

// dst[r, 0:cols] = src[r, 0:cols] for r < rows, with leading dimensions src_ld and dst_ld (pad / crop).
template <class T>
void copy_rows(cpu, const T* src, std::size_t src_ld, T* dst, std::size_t dst_ld, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) std::copy(src + r * src_ld, src + r * src_ld + cols, dst + r * dst_ld);
}

// y[b, c, r] = x[b, r, c]: each of `batch` matrices [rows, cols] transposed (overwrites y)
template <class T>
void transpose_batched(cpu, std::size_t batch, std::size_t rows, std::size_t cols, const T* x, T* y) {
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) y[(b * cols + c) * rows + r] = x[(b * rows + r) * cols + c];
}

// y[i] = f(x[i])
template <class T, class F>
void transform(cpu, hcview<T> x, hview<T> y, F f) {
  CPDIFF_ASSERT(x.size() == y.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size());
  const T* xp = x.data();
  T* yp = y.data();
#pragma omp parallel for simd num_threads(team_for(n)) if (parallel: team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
}

// z[i] = f(x[i], y[i])
template <class T, class F>
void transform(cpu, hcview<T> x, hcview<T> y, hview<T> z, F f) {
  CPDIFF_ASSERT(x.size() == z.size() && y.size() == z.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(z.size());
  const T *xp = x.data(), *yp = y.data();
  T* zp = z.data();
#pragma omp parallel for simd num_threads(team_for(n)) if (parallel: team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) zp[i] = f(xp[i], yp[i]);
}

// w[i] = f(x[i], y[i], z[i])
template <class T, class F>
void transform(cpu, hcview<T> x, hcview<T> y, hcview<T> z, hview<T> w, F f) {
  CPDIFF_ASSERT(x.size() == w.size() && y.size() == w.size() && z.size() == w.size());
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(w.size());
  const T *xp = x.data(), *yp = y.data(), *zp = z.data();
  T* wp = w.data();
#pragma omp parallel for simd num_threads(team_for(n)) if (parallel: team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) wp[i] = f(xp[i], yp[i], zp[i]);
}

// y[i] = lo + (hi - lo) * U(0,1) from Philox stream `stream` under `seed` at counter offset + i, as one
// fused multiply-add (std::fma): a written-out a + b * c is contracted or not depending on the compiler's
// flags (GCC fuses it under -march with FMA), and the same seed must give the same bits with any flags and
// on the GPU. `offset`: where in the stream y starts (a data-parallel shard's rows, rng::sample_offset).
template <class T>
void fill_uniform(cpu, hview<T> y, T lo, T hi, std::uint64_t seed, std::uint64_t stream, std::uint64_t offset = 0) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size());
  T* yp = y.data();
  const T width = hi - lo;
#pragma omp parallel for num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i)
    yp[i] = std::fma(width, static_cast<T>(philox_uniform(seed, stream, offset + static_cast<std::uint64_t>(i))), lo);
}

// y[i] = mean + stddev * N(0,1), fused like fill_uniform. Stream elements 2p and 2p + 1 come from one
// philox_normal_pair (the same bits as philox_normal for each, at half the Philox blocks and logs).
template <class T>
void fill_normal(cpu, hview<T> y, T mean, T stddev, std::uint64_t seed, std::uint64_t stream, std::uint64_t offset = 0) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size());
  T* yp = y.data();
  // y[j] is stream element offset + j; pair p covers elements 2p, 2p + 1, i.e. y[2p - offset], y[2p + 1 - offset]
  const std::ptrdiff_t lead = static_cast<std::ptrdiff_t>(offset & 1);  // 1: y[0] is an odd element
  const std::ptrdiff_t pairs = (n + lead + 1) / 2;
  const std::uint64_t first_pair = offset >> 1;
#pragma omp parallel for num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t p = 0; p < pairs; ++p) {
    const normal_pair z = philox_normal_pair(seed, stream, first_pair + static_cast<std::uint64_t>(p));
    const std::ptrdiff_t j = 2 * p - lead;  // y index of the even element
    if (j >= 0) yp[j] = std::fma(stddev, static_cast<T>(z.even), mean);
    if (j + 1 < n) yp[j + 1] = std::fma(stddev, static_cast<T>(z.odd), mean);
  }
}

template <class T>
double sum(cpu, hcview<T> x) {
  double s = 0;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
  const T* xp = x.data();
#pragma omp parallel for reduction(+ : s) num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) s += static_cast<double>(xp[i]);
  return s;
}

template <class T>
double sum_squares(cpu, hcview<T> x) {
  double s = 0;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
  const T* xp = x.data();
#pragma omp parallel for reduction(+ : s) num_threads(team_for(n)) if (team_for(n) > 1)
  for (std::ptrdiff_t i = 0; i < n; ++i) s += static_cast<double>(xp[i]) * static_cast<double>(xp[i]);
  return s;
}

template <class T>
bool all_finite(cpu, hcview<T> x) {
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x.data()[i])) return false;
  return true;
}

// Host <-> backend transfers; on the CPU these are plain copies.
template <class T>
std::vector<T> to_host(cpu, hcview<T> x) {
  return std::vector<T>(x.data(), x.data() + x.size());
}
template <class T>
void from_host(cpu, std::span<const T> src, hview<T> y) {
  CPDIFF_CHECK(src.size() == y.size(), shape_error, "ops::from_host", "source has ", src.size(),
               " elements, destination ", y.shape());
  std::copy(src.begin(), src.end(), y.data());
}

}  // namespace cpdiff::ops
