#pragma once
// zscore_stats: per-coordinate z-score statistics of rows [M, N] (SPEC.md step 3), computed in double:
// mean, and std = max(population std, floor) (np.std, ddof = 0; two passes, so a constant coordinate has
// exactly 0 spread and normalises to exactly 0).
//   auto s = data::zscore_stats::fit(rows, N);        // rows: M * N values
//   std::vector<float> z = s.normalise(v);            // (v - mean) / std, each row of v [K, N]
//   std::vector<float> v2 = s.denormalise(z);         // z * std + mean
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "cpdiff/core/error.hpp"

namespace cpdiff::data {

struct zscore_stats {
  std::vector<double> mean;  // [N]
  std::vector<double> std;   // [N], each >= the floor given to fit

  static zscore_stats fit(std::span<const float> rows, std::size_t n, double floor = 1e-8) {
    constexpr const char* where = "data::zscore_stats::fit";
    CPDIFF_CHECK(n > 0 && !rows.empty() && rows.size() % n == 0, shape_error, where, rows.size(),
                 " values are not one or more rows of ", n);
    CPDIFF_CHECK(floor > 0 && std::isfinite(floor), config_error, where, "floor must be finite and > 0, got ", floor);
    const std::size_t m = rows.size() / n;
    zscore_stats s{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
    for (std::size_t k = 0; k < m; ++k)
      for (std::size_t i = 0; i < n; ++i) s.mean[i] += rows[k * n + i];
    for (double& v : s.mean) v /= double(m);
    for (std::size_t k = 0; k < m; ++k)
      for (std::size_t i = 0; i < n; ++i) {
        const double d = rows[k * n + i] - s.mean[i];
        s.std[i] += d * d;
      }
    for (double& v : s.std) v = std::max(std::sqrt(v / double(m)), floor);
    return s;
  }

  std::size_t dim() const { return mean.size(); }
  std::vector<float> normalise(std::span<const float> v) const {
    return map(v, "data::zscore_stats::normalise", [](double x, double m, double s) { return (x - m) / s; });
  }
  std::vector<float> denormalise(std::span<const float> z) const {
    return map(z, "data::zscore_stats::denormalise", [](double x, double m, double s) { return x * s + m; });
  }

 private:
  template <class F>
  std::vector<float> map(std::span<const float> v, const char* where, F f) const {
    const std::size_t n = dim();
    CPDIFF_CHECK(n > 0 && !v.empty() && v.size() % n == 0, shape_error, where, v.size(), " values are not rows of ", n);
    std::vector<float> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(f(double(v[i]), mean[i % n], std[i % n]));
    return out;
  }
};

}  // namespace cpdiff::data
