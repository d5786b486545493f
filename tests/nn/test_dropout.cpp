#include <cmath>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/dropout.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::dropout<float>>);

TEST_CASE("dropout: keep fraction, inverted scaling, mask from philox_uniform", "[nn][dropout]") {
  rng g{42, 7};
  const double p = 0.3;
  nn::dropout<double> drop(p, g);
  const std::size_t n = 200003;  // not a multiple of 4: the last Philox block is partial
  tensor<double, cpu> x({n});
  ops::fill_uniform(cpu{}, x.view(), 1.0, 2.0, 1, 0);  // never 0, so a 0 in y is a dropped element
  auto y = drop.forward(x.cview());
  CHECK(drop.last_stream() == 7);
  CHECK(g.next_stream == 8);
  std::size_t kept = 0, wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool drop_ref = double(philox_uniform(42, 7, i)) < p;
    if (y(i) != 0) ++kept;
    const double expect = drop_ref ? 0.0 : x.data()[i] / (1 - p);
    if (std::abs(y(i) - expect) > 1e-15 * std::abs(expect)) ++wrong;
  }
  CHECK(wrong == 0);
  // Binomial(n, 0.7): standard deviation sqrt(n p (1-p)) ~ 205; allow 5 of them
  CHECK(std::abs(double(kept) - 0.7 * n) < 5 * std::sqrt(n * p * (1 - p)));
  // Mean preserved in expectation: E[y] = E[x] = 1.5
  CHECK(ops::sum(cpu{}, y) / n == Approx(1.5).epsilon(0.01));
}

TEST_CASE("dropout: backward uses the forward's mask (adjoint of a linear map)", "[nn][dropout]") {
  rng g{5};
  nn::dropout<double> drop(0.5, g);
  tensor<double, cpu> x({3, 4, 50}), dy({3, 4, 50});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 2, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 2, 1);
  auto y = drop.forward(x.cview());
  auto dx = drop.backward(dy.cview());
  // y = M x with M diagonal (0 or 2): <dy, y> = <M dy, x> = <dx, x>, and dx is 0 exactly where y is.
  CHECK(testing::dot(dy.cview(), y) == Approx(testing::dot(dx, x.cview())).epsilon(1e-12));
  std::size_t mismatched = 0;
  for (std::size_t i = 0; i < y.size(); ++i)
    if ((y.data()[i] == 0) != (dx.data()[i] == 0) || (dx.data()[i] != 0 && dx.data()[i] != 2 * dy.data()[i]))
      ++mismatched;
  CHECK(mismatched == 0);
  // A finite-difference check on the same mask: y is linear in x, so a perturbation of x_i moves
  // <dy, y> by dx_i * eps exactly.
  const double base = testing::dot(dy.cview(), y);
  tensor<double, cpu> xp = x;
  xp.data()[17] += 1e-3;
  // re-apply the same mask by hand through a fresh layer on the same stream
  rng same{5, drop.last_stream()};
  nn::dropout<double> again(0.5, same);
  CHECK((testing::dot(dy.cview(), again.forward(xp.cview())) - base) / 1e-3 == Approx(dx.data()[17]).margin(1e-9));
}

TEST_CASE("dropout: fresh mask per forward, reproducible from the seed; evaluation is the identity",
          "[nn][dropout]") {
  tensor<float, cpu> x({1000});
  ops::fill(cpu{}, x.view(), 1.0f);
  rng g1{9}, g2{9};
  nn::dropout<float> a(0.5, g1), b(0.5, g2);
  const auto y1 = ops::to_host(cpu{}, a.forward(x.cview()));
  const auto y2 = ops::to_host(cpu{}, a.forward(x.cview()));
  const auto z1 = ops::to_host(cpu{}, b.forward(x.cview()));
  CHECK(y1 != y2);  // a new stream per call
  CHECK(y1 == z1);  // same seed, same stream
  a.set_training(false);
  CHECK_FALSE(a.training());
  auto ye = a.forward(x.cview());
  CHECK(ops::to_host(cpu{}, ye) == ops::to_host(cpu{}, x.cview()));
  CHECK(g1.next_stream == 2);  // evaluation takes no stream
  tensor<float, cpu> dy({1000});
  ops::fill_normal(cpu{}, dy.view(), 0.0f, 1.0f, 3, 0);
  CHECK(ops::to_host(cpu{}, a.backward(dy.cview())) == ops::to_host(cpu{}, dy.cview()));
  // p = 0 in training keeps everything unscaled
  nn::dropout<float> none(0.0, g1);
  CHECK(ops::to_host(cpu{}, none.forward(x.cview())) == ops::to_host(cpu{}, x.cview()));
}

TEST_CASE("dropout: bad probability is a config_error; bad shapes a shape_error", "[nn][dropout]") {
  rng g{1};
  REQUIRE_THROWS_AS(nn::dropout<float>(1.0, g), config_error);
  REQUIRE_THROWS_WITH(nn::dropout<float>(-0.1, g), Catch::Contains("nn::dropout") && Catch::Contains("-0.1"));
  REQUIRE_THROWS_AS(nn::dropout<float>(std::nan(""), g), config_error);
  nn::dropout<float> d(0.1, g);
  tensor<float, cpu> empty({0, 3}), x({2, 3}), wrong({3, 2});
  REQUIRE_THROWS_AS(d.forward(empty.cview()), shape_error);
  d.forward(x.cview());
  REQUIRE_THROWS_WITH(d.backward(wrong.cview()), Catch::Contains("nn::dropout::backward") && Catch::Contains("[3, 2]"));
}
