#pragma once
// CPU kernels of the normalisation layers (instance, group, layer and batch norm). Two layouts cover
// all of them:
//   rows      x [rows, n]: statistics per contiguous row. instance norm: rows = N*C, n = L;
//             group norm: rows = N*G, n = (C/G)*L; layer norm: rows = size/D, n = D.
//   channels  x [outer, C, inner]: one value per channel c. batch-norm statistics (over outer and
//             inner) and every norm's affine weight / bias (instance and group norm: [N, C, L];
//             layer norm: [rows, D, 1]).
// Statistics are accumulated in (at least) double, shifted by the first element of the row or
// channel so that E[(x-k)^2] - E[x-k]^2 does not cancel when |mean| >> std: one pass over x.
// A row is summed in a fixed number of chunks combined in a fixed order, whether the threads split
// the rows (many rows) or the chunks of one long row (few rows): results do not depend on the thread
// count. Outputs may alias inputs where a comment says so (the layers compute dx in place).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

namespace detail {

template <class T>
using norm_acc_t = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

inline constexpr std::size_t norm_chunks = 16;
// Rows shorter than this are summed in one chunk: 16 chunks of a LayerNorm's 64 values cost more in loop set-up
// than in sums (the chunk count depends on n only, so results still do not depend on the thread count).
inline constexpr std::size_t norm_chunked_from = 1024;
inline std::size_t norm_chunk_count(std::size_t n) { return n >= norm_chunked_from ? norm_chunks : 1; }

// For every row r of [rows, n]: totals = sum over chunks k (in order) of part(r, begin_k, end_k),
// stats = finish(r, totals) once, then apply(r, begin, end, stats) over the whole row.
// part returns a pair of partial sums; finish turns the totals into a pair of row statistics.
template <class A, class Part, class Finish, class Apply>
void rows_reduce_apply(std::size_t rows, std::size_t n, Part part, Finish finish, Apply apply) {
  const std::size_t chunks = norm_chunk_count(n);
  const auto chunk = [n, chunks](std::size_t k) { return k * n / chunks; };
  const auto nrows = static_cast<std::ptrdiff_t>(rows);
  const bool big = rows * n > static_cast<std::size_t>(parallel_grain);
  if (rows >= static_cast<std::size_t>(max_threads()) || !big || chunks == 1) {
#pragma omp parallel for schedule(static) if (big)
    for (std::ptrdiff_t ri = 0; ri < nrows; ++ri) {
      const auto r = static_cast<std::size_t>(ri);
      A s0 = 0, s1 = 0;
      for (std::size_t k = 0; k < chunks; ++k) {
        const auto p = part(r, chunk(k), chunk(k + 1));
        s0 += p.first, s1 += p.second;
      }
      const auto st = finish(r, s0, s1);
      apply(r, std::size_t(0), n, st.first, st.second);
    }
    return;
  }
  // Few long rows (a small batch of very long signals): split each row's chunks over the threads.
  for (std::size_t r = 0; r < rows; ++r) {
    std::array<std::pair<A, A>, norm_chunks> parts;
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(norm_chunks); ++k)
      parts[k] = part(r, chunk(k), chunk(k + 1));
    A s0 = 0, s1 = 0;
    for (const auto& p : parts) s0 += p.first, s1 += p.second;
    const auto st = finish(r, s0, s1);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(norm_chunks); ++k)
      apply(r, chunk(k), chunk(k + 1), st.first, st.second);
  }
}

}  // namespace detail

// Per row of x [rows, n]: mean[r], istd[r] = 1 / sqrt(biased var + eps), xhat = (x - mean) * istd.
template <class T>
void row_norm_forward(cpu, const T* x, std::size_t rows, std::size_t n, T eps, T* xhat, T* mean, T* istd) {
  using A = detail::norm_acc_t<T>;
  detail::rows_reduce_apply<A>(
      rows, n,
      [=](std::size_t r, std::size_t b, std::size_t e) {
        const T* xr = x + r * n;
        const A k = xr[0];
        A s = 0, ss = 0;
#pragma omp simd reduction(+ : s, ss)
        for (std::size_t i = b; i < e; ++i) {
          const A d = A(xr[i]) - k;
          s += d;
          ss += d * d;
        }
        return std::pair<A, A>{s, ss};
      },
      [=](std::size_t r, A s, A ss) {
        const A m = s / A(n), var = std::max(A(0), ss / A(n) - m * m);
        mean[r] = T(A(x[r * n]) + m);
        istd[r] = T(A(1) / std::sqrt(var + A(eps)));
        return std::pair<A, A>{A(mean[r]), A(istd[r])};
      },
      [=](std::size_t r, std::size_t b, std::size_t e, A m, A is) {
        const T mt = T(m), it = T(is);
        const T* xr = x + r * n;
        T* yr = xhat + r * n;
#pragma omp simd
        for (std::size_t i = b; i < e; ++i) yr[i] = (xr[i] - mt) * it;
      });
}

// Per row: dx = istd * (g - mean(g) - xhat * mean(g * xhat)), g = dL/dxhat.  dx may alias g.
template <class T>
void row_norm_backward(cpu, const T* xhat, const T* g, const T* istd, std::size_t rows, std::size_t n, T* dx) {
  using A = detail::norm_acc_t<T>;
  detail::rows_reduce_apply<A>(
      rows, n,
      [=](std::size_t r, std::size_t b, std::size_t e) {
        const T *hr = xhat + r * n, *gr = g + r * n;
        A s = 0, sh = 0;
#pragma omp simd reduction(+ : s, sh)
        for (std::size_t i = b; i < e; ++i) {
          s += A(gr[i]);
          sh += A(gr[i]) * A(hr[i]);
        }
        return std::pair<A, A>{s, sh};
      },
      [=](std::size_t, A s, A sh) { return std::pair<A, A>{s / A(n), sh / A(n)}; },
      [=](std::size_t r, std::size_t b, std::size_t e, A mg, A mgh) {
        const T a = T(mg), c = T(mgh), is = istd[r];
        const T *hr = xhat + r * n, *gr = g + r * n;
        T* dr = dx + r * n;
#pragma omp simd
        for (std::size_t i = b; i < e; ++i) dr[i] = is * (gr[i] - a - hr[i] * c);
      });
}

// Per channel of x [outer, C, inner], over outer and inner: mean[c] and biased variance var[c].
template <class T>
void channel_moments(cpu, const T* x, std::size_t outer, std::size_t C, std::size_t inner, T* mean, T* var) {
  using A = detail::norm_acc_t<T>;
  const auto nc = static_cast<std::ptrdiff_t>(C);
  const A count = A(outer * inner);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C * inner)) if (team_for(outer * C * inner) > 1)
  for (std::ptrdiff_t ci = 0; ci < nc; ++ci) {
    const auto c = static_cast<std::size_t>(ci);
    const A k = x[c * inner];
    A s = 0, ss = 0;
    for (std::size_t o = 0; o < outer; ++o) {
      const T* xp = x + (o * C + c) * inner;
#pragma omp simd reduction(+ : s, ss)
      for (std::size_t i = 0; i < inner; ++i) {
        const A d = A(xp[i]) - k;
        s += d;
        ss += d * d;
      }
    }
    const A m = s / count;
    mean[c] = T(k + m);
    var[c] = T(std::max(A(0), ss / count - m * m));
  }
}

// istd[c] = 1 / sqrt(var[c] + eps)
template <class T>
void channel_inverse_std(cpu, const T* var, std::size_t C, T eps, T* istd) {
  for (std::size_t c = 0; c < C; ++c) istd[c] = T(1) / std::sqrt(var[c] + eps);
}

// y[o, c, i] = x[o, c, i] * scale[c] + shift[c]   (shift may be null: 0).  y may alias x.
template <class T>
void channel_affine(cpu, const T* x, const T* scale, const T* shift, std::size_t outer, std::size_t C,
                    std::size_t inner, T* y) {
  if (inner == 1) {  // x [outer, C] (layer norm): vectorise along C
    const auto no = static_cast<std::ptrdiff_t>(outer);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C)) if (team_for(outer * C) > 1)
    for (std::ptrdiff_t oi = 0; oi < no; ++oi) {
      const T* xp = x + static_cast<std::size_t>(oi) * C;
      T* yp = y + static_cast<std::size_t>(oi) * C;
#pragma omp simd
      for (std::size_t c = 0; c < C; ++c) yp[c] = xp[c] * scale[c] + (shift ? shift[c] : T(0));
    }
    return;
  }
  const auto planes = static_cast<std::ptrdiff_t>(outer * C);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C * inner)) if (team_for(outer * C * inner) > 1)
  for (std::ptrdiff_t pi = 0; pi < planes; ++pi) {
    const auto p = static_cast<std::size_t>(pi), c = p % C;
    const T a = scale[c], b = shift ? shift[c] : T(0);
    const T* xp = x + p * inner;
    T* yp = y + p * inner;
#pragma omp simd
    for (std::size_t i = 0; i < inner; ++i) yp[i] = xp[i] * a + b;
  }
}

// xhat[o, c, i] = (x[o, c, i] - mean[c]) * istd[c]
template <class T>
void channel_normalize(cpu, const T* x, const T* mean, const T* istd, std::size_t outer, std::size_t C,
                       std::size_t inner, T* xhat) {
  const auto planes = static_cast<std::ptrdiff_t>(outer * C);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C * inner)) if (team_for(outer * C * inner) > 1)
  for (std::ptrdiff_t pi = 0; pi < planes; ++pi) {
    const auto p = static_cast<std::size_t>(pi), c = p % C;
    const T m = mean[c], is = istd[c];
    const T* xp = x + p * inner;
    T* yp = xhat + p * inner;
#pragma omp simd
    for (std::size_t i = 0; i < inner; ++i) yp[i] = (xp[i] - m) * is;
  }
}

// Affine parameter gradients: dscale[c] += sum_{o,i} dy * xhat ; dshift[c] += sum_{o,i} dy
// (either may be null: a frozen parameter).
template <class T>
void channel_affine_backward(cpu, const T* xhat, const T* dy, std::size_t outer, std::size_t C, std::size_t inner,
                             T* dscale, T* dshift) {
  using A = detail::norm_acc_t<T>;
  if (!dscale && !dshift) return;
  const auto nc = static_cast<std::ptrdiff_t>(C);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C * inner)) if (team_for(outer * C * inner) > 1)
  for (std::ptrdiff_t ci = 0; ci < nc; ++ci) {
    const auto c = static_cast<std::size_t>(ci);
    A sg = 0, sb = 0;
    for (std::size_t o = 0; o < outer; ++o) {
      const T *hp = xhat + (o * C + c) * inner, *gp = dy + (o * C + c) * inner;
#pragma omp simd reduction(+ : sg, sb)
      for (std::size_t i = 0; i < inner; ++i) {
        sg += A(gp[i]) * A(hp[i]);
        sb += A(gp[i]);
      }
    }
    if (dscale) dscale[c] += T(sg);
    if (dshift) dshift[c] += T(sb);
  }
}

// Batch-norm input gradient (batch statistics), per channel over outer and inner:
// dx = istd[c] * (g - mean(g) - xhat * mean(g * xhat)), g = dL/dxhat.  dx may alias g.
template <class T>
void channel_norm_backward(cpu, const T* xhat, const T* g, const T* istd, std::size_t outer, std::size_t C,
                           std::size_t inner, T* dx) {
  using A = detail::norm_acc_t<T>;
  const auto nc = static_cast<std::ptrdiff_t>(C);
  const A count = A(outer * inner);
#pragma omp parallel for schedule(static) num_threads(team_for(outer * C * inner)) if (team_for(outer * C * inner) > 1)
  for (std::ptrdiff_t ci = 0; ci < nc; ++ci) {
    const auto c = static_cast<std::size_t>(ci);
    A s = 0, sh = 0;
    for (std::size_t o = 0; o < outer; ++o) {
      const T *hp = xhat + (o * C + c) * inner, *gp = g + (o * C + c) * inner;
#pragma omp simd reduction(+ : s, sh)
      for (std::size_t i = 0; i < inner; ++i) {
        s += A(gp[i]);
        sh += A(gp[i]) * A(hp[i]);
      }
    }
    const T a = T(s / count), b = T(sh / count), is = istd[c];
    for (std::size_t o = 0; o < outer; ++o) {
      const T* hp = xhat + (o * C + c) * inner;
      const T* gp = g + (o * C + c) * inner;
      T* dp = dx + (o * C + c) * inner;
#pragma omp simd
      for (std::size_t i = 0; i < inner; ++i) dp[i] = is * (gp[i] - a - hp[i] * b);
    }
  }
}

// Running statistics (PyTorch): r_mean = (1-m) r_mean + m mean;
// r_var = (1-m) r_var + m var * count / (count - 1)   (the unbiased batch variance; count > 1).
template <class T>
void running_stats_update(cpu, const T* mean, const T* var, std::size_t C, std::size_t count, T momentum,
                          T* running_mean, T* running_var) {
  const T unbias = T(count) / T(count - 1);
  for (std::size_t c = 0; c < C; ++c) {
    running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var[c] * unbias;
  }
}

}  // namespace cpdiff::ops
