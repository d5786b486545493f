#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/batch_norm1d.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::batch_norm1d<4>>);

TEST_CASE("batch_norm1d: gradcheck in training and evaluation mode", "[nn][batch_norm]") {
  parameter_store<double, cpu> ps;
  rng g{11};
  nn::batch_norm1d<4, double> bn(ps, "bn", g);
  ops::fill_normal(cpu{}, bn.weight(), 1.0, 0.5, 2, 0);
  ops::fill_normal(cpu{}, bn.bias(), 0.0, 0.5, 2, 1);
  SECTION("training, [N, C, L]") { testing::gradcheck(bn, ps, {3, 4, 5}); }
  SECTION("training, [N, C]") { testing::gradcheck(bn, ps, {6, 4}); }
  SECTION("evaluation, [N, C, L], non-trivial running statistics") {
    ops::fill_normal(cpu{}, bn.running_mean(), 0.0, 0.5, 2, 2);
    ops::fill_uniform(cpu{}, bn.running_var(), 0.5, 1.5, 2, 3);
    bn.set_training(false);
    testing::gradcheck(bn, ps, {3, 4, 5});
  }
}

TEST_CASE("batch_norm1d: store entries, PyTorch init, frozen weight", "[nn][batch_norm]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::batch_norm1d<3> bn(ps, "enc.bn", g);
  REQUIRE(ps.count() == 4);
  const auto rm = ps.find("enc.bn.running_mean"), rv = ps.find("enc.bn.running_var");
  CHECK_FALSE(ps.entry(rm).trainable);
  CHECK_FALSE(ps.entry(rv).trainable);
  CHECK(ps.entry(ps.find("enc.bn.weight")).trainable);
  CHECK(ps.entry(ps.find("enc.bn.bias")).trainable);
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(bn.weight()(c) == 1.0f);
    CHECK(bn.bias()(c) == 0.0f);
    CHECK(bn.running_mean()(c) == 0.0f);
    CHECK(bn.running_var()(c) == 1.0f);
  }
  int visited = 0;
  bn.for_each_parameter([&](const param_entry&, auto, auto) { ++visited; });
  CHECK(visited == 4);

  // One training step on constant-per-channel data x[n, c] = c + n: mean c + 1.5, biased var 1.25.
  tensor<float, cpu> x({4, 3}), dy({4, 3});
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t c = 0; c < 3; ++c) x.view()(n, c) = float(c + n), dy.view()(n, c) = 1.0f;
  ps.set_trainable(bn.weight_id(), false);
  bn.forward(x.cview());
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(bn.running_mean()(c) == Approx(0.1 * (c + 1.5)));
    CHECK(bn.running_var()(c) == Approx(0.9 + 0.1 * 1.25 * 4.0 / 3.0));  // unbiased: 5/3
  }
  ops::fill(cpu{}, ps.grads(), 0.0f);
  bn.backward(dy.cview());
  for (std::size_t c = 0; c < 3; ++c) {
    CHECK(ps.grad(bn.weight_id())(c) == 0.0f);    // frozen
    CHECK(ps.grad(bn.bias_id())(c) == 4.0f);      // sum of dy over N
  }
}

TEST_CASE("batch_norm1d: bad input is a shape_error naming the layer and the shape", "[nn][batch_norm]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::batch_norm1d<3> bn(ps, "bn", g);
  tensor<float, cpu> rank1({3}), channels({2, 4, 5}), empty({0, 3}), single({1, 3, 1}), ok({2, 3});
  REQUIRE_THROWS_WITH(bn.forward(rank1.cview()), Catch::Contains("nn::batch_norm1d::forward") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(bn.forward(channels.cview()),
                      Catch::Contains("nn::batch_norm1d::forward") && Catch::Contains("[2, 4, 5]"));
  REQUIRE_THROWS_AS(bn.forward(empty.cview()), shape_error);
  REQUIRE_THROWS_WITH(bn.forward(single.cview()), Catch::Contains("more than 1 value per channel"));
  bn.set_training(false);
  CHECK_NOTHROW(bn.forward(single.cview()));  // evaluation needs no batch statistics
  bn.forward(ok.cview());
  REQUIRE_THROWS_WITH(bn.backward(rank1.cview()), Catch::Contains("nn::batch_norm1d::backward"));
  REQUIRE_THROWS_AS((nn::batch_norm1d<3>(ps, "bn2", g, 1e-5, 1.5)), config_error);
}
