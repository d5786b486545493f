#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/layer_norm.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::layer_norm<6>>);

TEST_CASE("layer_norm: gradcheck on rank-2 and rank-3 inputs", "[nn][layer_norm]") {
  parameter_store<double, cpu> ps;
  rng g{5};
  nn::layer_norm<5, double> ln(ps, "ln", g);
  ops::fill_normal(cpu{}, ln.weight(), 1.0, 0.5, 3, 0);
  ops::fill_normal(cpu{}, ln.bias(), 0.0, 0.5, 3, 1);
  SECTION("[4, 5]") { testing::gradcheck(ln, ps, {4, 5}); }
  SECTION("[2, 3, 5]") { testing::gradcheck(ln, ps, {2, 3, 5}); }
}

TEST_CASE("layer_norm: a hand-computed row; frozen bias gets no gradient", "[nn][layer_norm]") {
  parameter_store<double, cpu> ps;
  rng g{1};
  nn::layer_norm<4, double> ln(ps, "ln", g, 0.0);
  ln.weight()(2) = 2.0;
  ln.bias()(3) = 1.0;
  tensor<double, cpu> x({1, 4}), dy({1, 4});
  const double v[] = {1, 3, 5, 7};  // mean 4, var 5
  std::copy(v, v + 4, x.data());
  auto y = ln.forward(x.cview());
  CHECK(y(0, 0) == Approx(-3 / std::sqrt(5.0)));
  CHECK(y(0, 2) == Approx(2 * 1 / std::sqrt(5.0)));
  CHECK(y(0, 3) == Approx(3 / std::sqrt(5.0) + 1));
  ps.set_trainable(ln.bias_id(), false);
  ops::fill(cpu{}, dy.view(), 1.0);
  ops::fill(cpu{}, ps.grads(), 0.0);
  ln.backward(dy.cview());
  for (double d : ps.grad(ln.bias_id()).span()) CHECK(d == 0.0);
  CHECK(ps.grad(ln.weight_id())(0) == Approx(-3 / std::sqrt(5.0)));
}

TEST_CASE("layer_norm: bad input is a shape_error naming the layer and the shape", "[nn][layer_norm]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::layer_norm<6> ln(ps, "ln", g);
  tensor<float, cpu> wrong({2, 5}), empty({0, 6}), ok({2, 6});
  REQUIRE_THROWS_WITH(ln.forward(wrong.cview()), Catch::Contains("nn::layer_norm::forward") && Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_AS(ln.forward(empty.cview()), shape_error);
  ln.forward(ok.cview());
  REQUIRE_THROWS_WITH(ln.backward(wrong.cview()), Catch::Contains("nn::layer_norm::backward"));
}
