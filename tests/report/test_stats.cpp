#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/report/stats.hpp"

namespace rp = cpdiff::report;

TEST_CASE("summarize an odd count", "[report][stats]") {
  const rp::summary s = rp::summarize(std::vector<double>{3, 1, 2});
  CHECK(s.count == 3);
  CHECK(s.best == 3);
  CHECK(s.worst == 1);
  CHECK(s.mean == Approx(2));
  CHECK(s.median == 2);
  CHECK(s.stddev == Approx(std::sqrt(2.0 / 3.0)));
}

TEST_CASE("summarize an even count: the median is the mean of the two middle values", "[report][stats]") {
  const std::vector<double> v{90.0, 60.5, 70.0, 88.0};
  const rp::summary s = rp::summarize(v);
  CHECK(s.median == Approx(79.0));  // (70 + 88) / 2
  CHECK(s.mean == Approx(77.125));
  CHECK(s.best == 90.0);
  // Sample standard deviation: squared deviations 165.77 + 276.39 + 50.77 + 118.27 = 611.1875, / 3.
  CHECK(rp::summarize(v, 1).stddev == Approx(std::sqrt(611.1875 / 3.0)));
  CHECK(s.stddev == Approx(std::sqrt(611.1875 / 4.0)));
}

TEST_CASE("summarize one value and float input", "[report][stats]") {
  const rp::summary s = rp::summarize(std::vector<double>{42.5});
  CHECK(s.median == 42.5);
  CHECK(s.stddev == 0);
  const std::vector<float> f{0.5f, 0.25f};
  const rp::summary t = rp::summarize(std::span<const float>(f));
  CHECK(t.median == Approx(0.375));
  CHECK(t.best == 0.5);
}

TEST_CASE("summarize rejects empty input, NaN and a bad ddof", "[report][stats]") {
  CHECK_THROWS_AS(rp::summarize(std::vector<double>{}), cpdiff::config_error);
  CHECK_THROWS_AS(rp::summarize(std::vector<double>{1.0}, 1), cpdiff::config_error);
  CHECK_THROWS_AS(rp::summarize(std::vector<double>{1.0, 2.0}, 2), cpdiff::config_error);
  CHECK_THROWS_WITH(rp::summarize(std::vector<double>{1.0, std::numeric_limits<double>::quiet_NaN()}),
                    Catch::Contains("value 1"));
}
