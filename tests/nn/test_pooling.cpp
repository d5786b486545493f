#include <string>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/avg_pool2d.hpp"
#include "cpdiff/nn/global_avg_pool.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("avg_pool2d: gradcheck", "[nn][pooling]") {
  parameter_store<double, cpu> ps;  // empty: the input gradient only
  SECTION("k2 s2") {
    nn::avg_pool2d<2, 2, double> pool;
    testing::gradcheck(pool, ps, {2, 3, 4, 6});
  }
  SECTION("k3 s2, overlapping windows, odd sizes") {
    nn::avg_pool2d<3, 2, double> pool;
    testing::gradcheck(pool, ps, {2, 2, 7, 6});
  }
}

TEST_CASE("avg_pool2d: known values", "[nn][pooling]") {
  // x[0, 0] = 0..15 on a 4x4 grid; 2x2 windows average to 2.5, 4.5, 10.5, 12.5
  nn::avg_pool2d<2, 2, double> pool;
  tensor<double, cpu> x({1, 1, 4, 5});  // the last column falls outside every window
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 5; ++j) x.view()(0, 0, i, j) = j < 4 ? double(i * 4 + j) : 100.0;
  const auto y = pool.forward(x.cview());
  REQUIRE(y.shape() == shape{1, 1, 2, 2});
  CHECK(y(0, 0, 0, 0) == 2.5);
  CHECK(y(0, 0, 0, 1) == 4.5);
  CHECK(y(0, 0, 1, 0) == 10.5);
  CHECK(y(0, 0, 1, 1) == 12.5);
  tensor<double, cpu> dy({1, 1, 2, 2});
  ops::fill(cpu{}, dy.view(), 1.0);
  const auto dx = pool.backward(dy.cview());
  CHECK(dx(0, 0, 3, 3) == 0.25);
  CHECK(dx(0, 0, 0, 4) == 0.0);
}

TEST_CASE("global_avg_pool: gradcheck over [N, C, L] and [N, C, H, W]", "[nn][pooling]") {
  parameter_store<double, cpu> ps;
  nn::global_avg_pool<double> gap;
  testing::gradcheck(gap, ps, {2, 3, 7});
  testing::gradcheck(gap, ps, {2, 3, 4, 5});
  tensor<double, cpu> x({2, 3, 4, 5});
  REQUIRE(gap.forward(x.cview()).shape() == shape{2, 3, 1, 1});
}

TEST_CASE("pooling: bad input is a shape_error naming the layer and the shape", "[nn][pooling]") {
  STATIC_REQUIRE(layer<nn::avg_pool2d<2>>);
  STATIC_REQUIRE(layer<nn::global_avg_pool<double>>);
  nn::avg_pool2d<2, 2> pool;
  nn::global_avg_pool<> gap;
  const auto throws = [](auto& layer, shape s, const char* name) {
    tensor<float, cpu> x(s);
    ops::fill(cpu{}, x.view(), 0.0f);
    INFO(name << " " << s);
    REQUIRE_THROWS_AS(layer.forward(x.cview()), shape_error);
    REQUIRE_THROWS_WITH(layer.forward(x.cview()), Catch::Contains(name) && Catch::Contains(s.str()));
  };
  throws(pool, {2, 3, 8}, "nn::avg_pool2d::forward");
  throws(pool, {2, 3, 1, 8}, "nn::avg_pool2d::forward");
  throws(pool, {0, 3, 8, 8}, "nn::avg_pool2d::forward");
  throws(gap, {2, 3}, "nn::global_avg_pool::forward");
  throws(gap, {2, 3, 4, 5, 6}, "nn::global_avg_pool::forward");
  throws(gap, {0, 3, 7}, "nn::global_avg_pool::forward");
  throws(gap, {2, 3, 0}, "nn::global_avg_pool::forward");

  tensor<float, cpu> x({2, 3, 8, 8}), dy({2, 3, 4, 5});
  ops::fill(cpu{}, x.view(), 1.0f);
  pool.forward(x.cview());
  REQUIRE_THROWS_WITH(pool.backward(dy.cview()),
                      Catch::Contains("nn::avg_pool2d::backward") && Catch::Contains("[2, 3, 4, 5]"));
  gap.forward(x.cview());
  REQUIRE_THROWS_WITH(gap.backward(dy.cview()),
                      Catch::Contains("nn::global_avg_pool::backward") && Catch::Contains("[2, 3, 4, 5]"));
}
