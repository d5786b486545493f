#pragma once
// Summary statistics of a set of accuracies (one per trained checkpoint or generated LoRA): the numbers
// the report's tables show. "best" is the maximum, as the paper reports best trained / best generated.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "cpdiff/core/error.hpp"

namespace cpdiff::report {

struct summary {
  std::size_t count = 0;
  double best = 0;    // maximum
  double worst = 0;   // minimum
  double mean = 0;
  double median = 0;  // of an even count: the mean of the two middle values
  double stddev = 0;  // standard deviation with divisor count - ddof (0 by default, like numpy.std)
};

// Summary of `values` (at least one, all finite: a NaN accuracy means a broken evaluation, not a
// number to average over). ddof = 1 gives the sample standard deviation (then count must exceed 1).
inline summary summarize(std::span<const double> values, int ddof = 0) {
  const char* where = "report::summarize";
  CPDIFF_CHECK(!values.empty(), config_error, where, "no values to summarise");
  CPDIFF_CHECK(ddof == 0 || ddof == 1, config_error, where, "ddof must be 0 or 1, got ", ddof);
  CPDIFF_CHECK(values.size() > static_cast<std::size_t>(ddof), config_error, where, "ddof = ", ddof, " needs more than ",
               ddof, " values, got ", values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    CPDIFF_CHECK(std::isfinite(values[i]), numeric_error, where, "value ", i, " is ", values[i]);

  summary s;
  s.count = values.size();
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  s.worst = sorted.front();
  s.best = sorted.back();
  const std::size_t mid = s.count / 2;
  s.median = s.count % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(s.count);
  double ss = 0;  // two-pass: sum of squared deviations from the mean (no cancellation)
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(ss / static_cast<double>(s.count - static_cast<std::size_t>(ddof)));
  return s;
}

inline summary summarize(const std::vector<double>& values, int ddof = 0) {
  return summarize(std::span<const double>(values), ddof);
}

// Same, for float accuracies.
inline summary summarize(std::span<const float> values, int ddof = 0) {
  const std::vector<double> v(values.begin(), values.end());
  return summarize(std::span<const double>(v), ddof);
}

}  // namespace cpdiff::report
