#include "cpdiff/backend/cpu.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("linear: gradcheck with and without bias", "[nn][linear]") {
  parameter_store<double, cpu> ps;
  rng g{7};
  SECTION("bias") {
    nn::linear<3, 4, double> fc(ps, "fc", g);
    testing::gradcheck(fc, ps, {2, 3});
  }
  SECTION("no bias, rank-3 input") {
    nn::linear<5, 2, double, cpu, false> fc(ps, "fc", g);
    testing::gradcheck(fc, ps, {2, 3, 5});
  }
}

TEST_CASE("linear: wrong input width is a shape_error naming the layer", "[nn][linear]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<3, 4> fc(ps, "fc", g);
  tensor<float, cpu> x({2, 5});
  REQUIRE_THROWS_AS(fc.forward(x.cview()), shape_error);
  REQUIRE_THROWS_WITH(fc.forward(x.cview()), Catch::Contains("nn::linear::forward") && Catch::Contains("[2, 5]"));
}
