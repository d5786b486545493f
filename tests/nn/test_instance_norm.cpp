#include <cmath>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/instance_norm1d.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::instance_norm1d<3>> && layer<nn::instance_norm1d<3, double, cpu, true>>);

namespace {
// Two-pass reference in long double: y = (x - mean) / sqrt(var + eps) per row of [rows, n].
std::vector<long double> reference_rows(const float* x, std::size_t rows, std::size_t n, long double eps) {
  std::vector<long double> y(rows * n);
  for (std::size_t r = 0; r < rows; ++r) {
    long double m = 0, v = 0;
    for (std::size_t i = 0; i < n; ++i) m += x[r * n + i];
    m /= n;
    for (std::size_t i = 0; i < n; ++i) v += (x[r * n + i] - m) * (x[r * n + i] - m);
    v /= n;
    for (std::size_t i = 0; i < n; ++i) y[r * n + i] = (x[r * n + i] - m) / std::sqrt(v + eps);
  }
  return y;
}
}  // namespace

TEST_CASE("instance_norm1d: gradcheck without and with affine", "[nn][instance_norm]") {
  SECTION("no affine") {
    parameter_store<double, cpu> ps;
    nn::instance_norm1d<3, double> in;
    testing::gradcheck(in, ps, {2, 3, 5});
  }
  SECTION("affine, random weight and bias") {
    parameter_store<double, cpu> ps;
    rng g{3};
    nn::instance_norm1d<3, double, cpu, true> in(ps, "in", g);
    ops::fill_normal(cpu{}, in.weight(), 1.0, 0.5, 9, 0);
    ops::fill_normal(cpu{}, in.bias(), 0.0, 0.5, 9, 1);
    testing::gradcheck(in, ps, {2, 3, 6});
  }
}

TEST_CASE("instance_norm1d: affine init is weight 1, bias 0; frozen weight gets no gradient", "[nn][instance_norm]") {
  parameter_store<double, cpu> ps;
  rng g{1};
  nn::instance_norm1d<2, double, cpu, true> in(ps, "norm", g);
  REQUIRE(ps.entry(ps.find("norm.weight")).shape == shape{2});
  for (double w : in.weight().span()) CHECK(w == 1.0);
  for (double b : in.bias().span()) CHECK(b == 0.0);
  ps.set_trainable(in.weight_id(), false);
  tensor<double, cpu> x({1, 2, 4}), dy({1, 2, 4});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 5, 1);
  in.forward(x.cview());
  in.backward(dy.cview());
  for (double d : ps.grad(in.weight_id()).span()) CHECK(d == 0.0);
  // dbias = sum over L of dy
  CHECK(ps.grad(in.bias_id())(0) == Approx(dy.view()(0, 0, 0) + dy.view()(0, 0, 1) + dy.view()(0, 0, 2) +
                                            dy.view()(0, 0, 3)));
}

TEST_CASE("instance_norm1d: long float rows with a large offset match a long-double reference",
          "[nn][instance_norm]") {
  // The autoencoder's signals: L in the tens of thousands; an offset of 1000 would cancel badly in
  // a naive float E[x^2] - E[x]^2.
  const std::size_t N = 2, C = 3, L = 74000;
  tensor<float, cpu> x({N, C, L});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 21, 0);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 1000.0f + 0.5f * x.data()[i];
  nn::instance_norm1d<C> in;
  auto y = in.forward(x.cview());
  const auto ref = reference_rows(x.data(), N * C, L, 1e-5L);
  double worst = 0;
  for (std::size_t i = 0; i < y.size(); ++i) worst = std::max(worst, double(std::abs(y.data()[i] - ref[i])));
  INFO("worst |y - ref| " << worst);
  CHECK(worst < 3e-4);  // float: ulp(1000) / std 0.5 ~ 1.2e-4 per element
  for (std::size_t r = 0; r < N * C; ++r) CHECK(in.mean().data()[r] == Approx(1000.0).epsilon(1e-4));
}

TEST_CASE("instance_norm1d: a single long row (threads split the row) equals the same row among many",
          "[nn][instance_norm]") {
  const std::size_t L = 50000;
  tensor<double, cpu> one({1, 1, L}), many({8, 1, L}), dy1({1, 1, L}), dym({8, 1, L});
  ops::fill_normal(cpu{}, one.view(), 3.0, 2.0, 4, 0);
  ops::fill_normal(cpu{}, dy1.view(), 0.0, 1.0, 4, 1);
  for (std::size_t r = 0; r < 8; ++r)
    for (std::size_t i = 0; i < L; ++i) many.data()[r * L + i] = one.data()[i], dym.data()[r * L + i] = dy1.data()[i];
  nn::instance_norm1d<1, double> a, b;
  auto ya = a.forward(one.cview());
  auto yb = b.forward(many.cview());
  auto da = a.backward(dy1.cview());
  auto db = b.backward(dym.cview());
  bool same_y = true, same_dx = true;
  for (std::size_t i = 0; i < L; ++i) {
    same_y = same_y && ya.data()[i] == yb.data()[7 * L + i];
    same_dx = same_dx && da.data()[i] == db.data()[7 * L + i];
  }
  CHECK(same_y);
  CHECK(same_dx);
}

TEST_CASE("instance_norm1d: bad input is a shape_error naming the layer and the shape", "[nn][instance_norm]") {
  nn::instance_norm1d<3> in;
  tensor<float, cpu> rank2({3, 7}), channels({2, 4, 7}), empty({0, 3, 7}), length1({2, 3, 1}), ok({2, 3, 7});
  REQUIRE_THROWS_WITH(in.forward(rank2.cview()), Catch::Contains("nn::instance_norm1d::forward") &&
                                                      Catch::Contains("[3, 7]"));
  REQUIRE_THROWS_WITH(in.forward(channels.cview()), Catch::Contains("nn::instance_norm1d::forward") &&
                                                         Catch::Contains("[2, 4, 7]"));
  REQUIRE_THROWS_AS(in.forward(empty.cview()), shape_error);
  REQUIRE_THROWS_AS(in.forward(length1.cview()), shape_error);
  in.forward(ok.cview());
  REQUIRE_THROWS_WITH(in.backward(channels.cview()), Catch::Contains("nn::instance_norm1d::backward") &&
                                                          Catch::Contains("[2, 4, 7]"));
}
