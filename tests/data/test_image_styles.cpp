// Tests for cpdiff/data/image_styles.hpp: hand-computed pixel results on tiny images.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/data/image_styles.hpp"

using namespace cpdiff;
using data::image_size;
using data::style;

namespace {
void require_near(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("pixel " << i << ": got " << got[i] << ", expected " << want[i]);
    CHECK(std::abs(double(got[i]) - want[i]) <= tol);
  }
}
const std::vector<float> nine{1, 2, 3, 4, 5, 6, 7, 8, 9};  // 3x3: [[1 2 3] [4 5 6] [7 8 9]]
}  // namespace

TEST_CASE("styles: names and parameters", "[data][styles]") {
  CHECK(style::identity().name() == "identity");
  CHECK(style::rotate(30).name() == "rotate(30)");
  CHECK(style::rotate(30).kind_name() == std::string("rotate"));
  CHECK(style::rotate(30).parameter() == 30);
  CHECK(style::blur(1.5).name() == "blur(1.5)");
  CHECK(style::noise(0.2, 7).name() == "noise(0.2,seed=7)");
  CHECK(style::noise(0.2, 7).seed() == 7);
  CHECK(style::interpolate(style::invert(), style::hflip(), 0.25).name() == "interpolate(invert,hflip,0.25)");
  CHECK(style::rotate(30) == style::rotate(30));
  CHECK_FALSE(style::rotate(30) == style::rotate(31));
  CHECK_THROWS_AS(style::blur(0), config_error);
  CHECK_THROWS_AS(style::interpolate(style::invert(), style::hflip(), 1.5), config_error);
  CHECK_THROWS_AS(style::contrast(-1), config_error);
}

TEST_CASE("styles: identity, invert, hflip", "[data][styles]") {
  const image_size s{3, 3};
  require_near(style::identity().apply(nine, s), {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const std::vector<float> px{0, 0.25f, 1, 0.5f};
  require_near(style::invert().apply(px, {2, 2}), {1, 0.75, 0, 0.5});
  require_near(style::hflip().apply(nine, s), {3, 2, 1, 6, 5, 4, 9, 8, 7});
  // Two images in one call: each transformed on its own.
  std::vector<float> two(nine);
  two.insert(two.end(), nine.begin(), nine.end());
  CHECK(style::hflip().apply(two, s).size() == 18);
  CHECK(style::hflip().apply(two, s)[9] == 3);
}

TEST_CASE("styles: rotation by multiples of 90 is numpy's rot90", "[data][styles]") {
  const image_size s{3, 3};
  require_near(style::rotate(90).apply(nine, s), {3, 6, 9, 2, 5, 8, 1, 4, 7}, 0);    // np.rot90(m, 1)
  require_near(style::rotate(180).apply(nine, s), {9, 8, 7, 6, 5, 4, 3, 2, 1}, 0);   // np.rot90(m, 2)
  require_near(style::rotate(-90).apply(nine, s), {7, 4, 1, 8, 5, 2, 9, 6, 3}, 0);   // np.rot90(m, 3)
  require_near(style::rotate(270).apply(nine, s), {7, 4, 1, 8, 5, 2, 9, 6, 3}, 0);
  require_near(style::rotate(360).apply(nine, s), {1, 2, 3, 4, 5, 6, 7, 8, 9}, 0);
  // 180 on a 2x3 image is exact too
  const std::vector<float> r23{1, 2, 3, 4, 5, 6};
  require_near(style::rotate(180).apply(r23, {2, 3}), {6, 5, 4, 3, 2, 1}, 0);
}

TEST_CASE("styles: arbitrary rotation is bilinear with 0 outside", "[data][styles]") {
  // A single bright centre pixel in a 3x3 image, rotated by 45 degrees counter-clockwise.
  const std::vector<float> dot{0, 0, 0, 0, 1, 0, 0, 0, 0};
  const std::vector<float> y = style::rotate(45).apply(dot, {3, 3});
  // Output (0, 1) samples the source at (row 1 - 1/sqrt2, col 1 + 1/sqrt2): weight of the centre is
  // (1 - 1/sqrt2) * (1 - 1/sqrt2).
  const double a = 1 - 1 / std::sqrt(2.0);
  CHECK(y[4] == Approx(1.0).margin(1e-12));
  CHECK(y[1] == Approx(a * a).margin(1e-6));
  // By symmetry the four edge-centres get the same value.
  CHECK(y[3] == Approx(a * a).margin(1e-6));
  CHECK(y[5] == Approx(a * a).margin(1e-6));
  CHECK(y[7] == Approx(a * a).margin(1e-6));
  // Corner (0, 0): u = -1, v = 1 -> source u' = -1 cos + 1 sin = 0, v' = 1 sin + 1 cos = sqrt2:
  // row 1 - sqrt2 = -0.414 (between row -1 (outside) and row 0 (zero)), so 0.
  CHECK(y[0] == Approx(0.0).margin(1e-12));
  // A constant image loses mass only at the corners: the centre stays 1.
  const std::vector<float> ones(25, 1.0f);
  CHECK(style::rotate(30).apply(ones, {5, 5})[12] == Approx(1.0).margin(1e-6));
}

TEST_CASE("styles: gaussian blur of an impulse is the outer product of the kernel", "[data][styles]") {
  std::vector<float> imp(25, 0.0f);
  imp[12] = 1.0f;  // centre of 5x5
  const double sigma = 1.0;
  double z = 0;
  for (int k = -3; k <= 3; ++k) z += std::exp(-k * k / (2 * sigma * sigma));
  std::vector<double> want(25);
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c) {
      const int dr = r - 2, dc = c - 2;
      want[r * 5 + c] = std::exp(-(dr * dr + dc * dc) / (2 * sigma * sigma)) / (z * z);
    }
  require_near(style::blur(sigma).apply(imp, {5, 5}), want, 1e-7);
  // A constant image far from the border stays constant (weights sum to 1).
  const std::vector<float> ones(15 * 15, 1.0f);
  CHECK(style::blur(0.8).apply(ones, {15, 15})[7 * 15 + 7] == Approx(1.0).margin(1e-6));
}

TEST_CASE("styles: Sobel edge magnitude, normalised by the image maximum", "[data][styles]") {
  // 4x4, left two columns 0, right two 1; zero padding outside. Hand-computed:
  //   rows 0 and 3: |g| = 0, sqrt(10), sqrt(18), sqrt(18);  rows 1 and 2: 0, 4, 4, 4;  max sqrt(18)
  const std::vector<float> img{0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};
  const double m = std::sqrt(18.0);
  const std::vector<double> edge{0, std::sqrt(10.0) / m, 1, 1};
  const std::vector<double> mid{0, 4 / m, 4 / m, 4 / m};
  std::vector<double> want;
  for (const auto* row : {&edge, &mid, &mid, &edge}) want.insert(want.end(), row->begin(), row->end());
  require_near(style::edges().apply(img, {4, 4}), want);
  // A black image has no edges (and no division by zero).
  require_near(style::edges().apply(std::vector<float>(9, 0.0f), {3, 3}), std::vector<double>(9, 0.0));
}

TEST_CASE("styles: contrast blends with the image mean and clamps", "[data][styles]") {
  const std::vector<float> px{0, 1, 0.5f, 0.5f};  // mean 0.5
  require_near(style::contrast(0.5).apply(px, {2, 2}), {0.25, 0.75, 0.5, 0.5});
  require_near(style::contrast(3).apply(px, {2, 2}), {0, 1, 0.5, 0.5});
  require_near(style::contrast(0).apply(px, {2, 2}), {0.5, 0.5, 0.5, 0.5});
}

TEST_CASE("styles: gaussian noise is Philox-seeded, reproducible and clamped", "[data][styles]") {
  const std::vector<float> grey(2 * 100, 0.5f);
  const style s = style::noise(0.1, 42);
  const std::vector<float> a = s.apply(grey, {10, 10}), b = s.apply(grey, {10, 10});
  CHECK(a == b);
  CHECK(a != style::noise(0.1, 43).apply(grey, {10, 10}));
  // Pixel 7 of image 1: 0.5 + 0.1 * philox_normal(42, 1, 7)
  CHECK(a[100 + 7] == Approx(0.5 + 0.1 * philox_normal(42, 1, 7)).margin(1e-6));
  double mean = 0;
  for (float v : a) mean += v - 0.5;
  CHECK(std::abs(mean / double(a.size())) < 0.03);
  CHECK(a != grey);
  for (float v : style::noise(5.0, 1).apply(grey, {10, 10})) CHECK((v >= 0 && v <= 1));
}

TEST_CASE("styles: interpolate mixes two styles pixel-wise", "[data][styles]") {
  const image_size s{3, 3};
  const std::vector<float> x{0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
  const std::vector<float> inv = style::invert().apply(x, s), flip = style::hflip().apply(x, s);
  const std::vector<float> mix = style::interpolate(style::invert(), style::hflip(), 0.25).apply(x, s);
  for (std::size_t i = 0; i < 9; ++i) CHECK(mix[i] == Approx(0.75 * inv[i] + 0.25 * flip[i]).margin(1e-7));
  CHECK(style::interpolate(style::invert(), style::hflip(), 0).apply(x, s) == inv);
  CHECK(style::interpolate(style::invert(), style::hflip(), 1).apply(x, s) == flip);
  // Pixel 0: 0.75 * (1 - 0) + 0.25 * x[2] = 0.75 + 0.05
  CHECK(mix[0] == Approx(0.8).margin(1e-7));
}

TEST_CASE("styles: a size that does not divide the data is a shape_error", "[data][styles]") {
  const std::vector<float> x(10, 0.0f);
  REQUIRE_THROWS_AS(style::invert().apply(x, {3, 3}), shape_error);
  REQUIRE_THROWS_WITH(style::invert().apply(x, {3, 3}), Catch::Contains("data::style::apply") && Catch::Contains("3x3"));
  CHECK(style::invert().apply(std::vector<float>(784 * 2, 0.0f)).size() == 784 * 2);  // 28x28 by default
}
