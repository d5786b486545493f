#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "cpdiff/core/float_math.hpp"

// The vectorisable float functions of core/float_math.hpp (used by the activations) against the C library.

namespace {

// Distance in units in the last place between two finite floats of any sign.
std::int64_t ulps(float a, float b) {
  const auto ordered = [](float v) {
    const auto i = static_cast<std::int64_t>(std::bit_cast<std::int32_t>(v));
    return i < 0 ? std::int64_t(std::numeric_limits<std::int32_t>::min()) - i : i;
  };
  return std::llabs(ordered(a) - ordered(b));
}

// Evenly spaced points of [lo, hi] and, around 0, a geometric sweep of tiny magnitudes of both signs.
template <class F>
void sweep(float lo, float hi, F&& f) {
  constexpr int n = 400000;
  for (int i = 0; i <= n; ++i) f(lo + (hi - lo) * float(i) / float(n));
  for (float m = 1e-30f; m < 1e-2f; m *= 1.05f) {
    f(m);
    f(-m);
  }
}

}  // namespace

TEST_CASE("fmath::expm1 and exp are within 2 ulp of the C library on [-87, 88]", "[float_math]") {
  std::int64_t worst_expm1 = 0, worst_exp = 0;
  sweep(-87.f, 88.f, [&](float x) {
    worst_expm1 = std::max(worst_expm1, ulps(cpdiff::fmath::expm1(x), std::expm1(x)));
    worst_exp = std::max(worst_exp, ulps(cpdiff::fmath::exp(x), std::exp(x)));
  });
  CHECK(worst_expm1 <= 2);
  CHECK(worst_exp <= 2);
  // outside the range: the clamp (expm1 -> -1 and exp -> 0 below; finite above), NaN kept
  CHECK(cpdiff::fmath::expm1(-1000.f) == -1.f);
  CHECK(cpdiff::fmath::exp(-1000.f) == 0.f);
  CHECK(cpdiff::fmath::exp(-std::numeric_limits<float>::infinity()) == 0.f);
  CHECK(std::isnan(cpdiff::fmath::expm1(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(cpdiff::fmath::exp(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fmath::erfc has relative error below 3e-6 on [-6, 6] and absolute below 4e-7", "[float_math]") {
  double worst_rel = 0, worst_abs = 0;
  sweep(-6.f, 6.f, [&](float x) {
    const double ref = std::erfc(double(x)), got = cpdiff::fmath::erfc(x);
    worst_rel = std::max(worst_rel, std::abs(got - ref) / ref);
    worst_abs = std::max(worst_abs, std::abs(got - ref));
  });
  CHECK(worst_rel < 3e-6);  // measured 2.1e-6 (at x = 5.6, where erfc is 1e-15: the rounding of -x^2)
  CHECK(worst_abs < 4e-7);  // measured 3.0e-7 (for x < 0 erfc is near 2, where 1 ulp is 2.4e-7)
  CHECK(cpdiff::fmath::erfc(0.f) == Approx(1.0).epsilon(2e-7));
  CHECK(cpdiff::fmath::erfc(-30.f) == 2.f);
  CHECK(cpdiff::fmath::erfc(30.f) == 0.f);
}

TEST_CASE("fmath's double overloads are the C library's", "[float_math]") {
  for (double x : {-30.0, -1.5, -1e-9, 0.0, 2e-7, 0.7, 3.0}) {
    CHECK(cpdiff::fmath::expm1(x) == std::expm1(x));
    CHECK(cpdiff::fmath::exp(x) == std::exp(x));
    CHECK(cpdiff::fmath::erfc(x) == std::erfc(x));
  }
}
