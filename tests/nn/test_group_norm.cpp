#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/group_norm.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::group_norm<2, 4>>);

TEST_CASE("group_norm: gradcheck", "[nn][group_norm]") {
  parameter_store<double, cpu> ps;
  rng g{5};
  SECTION("[N, C, L], 2 groups of 3 channels") {
    nn::group_norm<2, 6, double> gn(ps, "gn", g);
    ops::fill_normal(cpu{}, gn.weight(), 1.0, 0.5, 3, 0);
    ops::fill_normal(cpu{}, gn.bias(), 0.0, 0.5, 3, 1);
    testing::gradcheck(gn, ps, {2, 6, 4});
  }
  SECTION("[N, C], 3 groups of 2 channels") {
    nn::group_norm<3, 6, double> gn(ps, "gn", g);
    ops::fill_normal(cpu{}, gn.weight(), 1.0, 0.5, 3, 2);
    testing::gradcheck(gn, ps, {3, 6});
  }
}

TEST_CASE("group_norm: one group per channel is an affine instance norm; init is 1 / 0", "[nn][group_norm]") {
  parameter_store<double, cpu> ps;
  rng g{1};
  nn::group_norm<2, 2, double> gn(ps, "gn", g);
  CHECK(gn.weight()(0) == 1.0);
  CHECK(gn.bias()(1) == 0.0);
  tensor<double, cpu> x({1, 2, 4});
  const double v[] = {1, 2, 3, 4, 10, 10, 10, 14};
  std::copy(v, v + 8, x.data());
  auto y = gn.forward(x.cview());
  // channel 0: mean 2.5, var 1.25 ; channel 1: mean 11, var 3
  CHECK(y(0, 0, 0) == Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
  CHECK(y(0, 1, 3) == Approx(3.0 / std::sqrt(3.0 + 1e-5)));
}

TEST_CASE("group_norm: bad input is a shape_error naming the layer and the shape", "[nn][group_norm]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::group_norm<2, 4> gn(ps, "gn", g);
  tensor<float, cpu> rank1({4}), channels({2, 6, 5}), empty({0, 4, 5}), ok({2, 4, 5});
  REQUIRE_THROWS_WITH(gn.forward(rank1.cview()), Catch::Contains("nn::group_norm::forward") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(gn.forward(channels.cview()),
                      Catch::Contains("nn::group_norm::forward") && Catch::Contains("[2, 6, 5]"));
  REQUIRE_THROWS_AS(gn.forward(empty.cview()), shape_error);
  gn.forward(ok.cview());
  REQUIRE_THROWS_WITH(gn.backward(channels.cview()), Catch::Contains("nn::group_norm::backward"));
}
