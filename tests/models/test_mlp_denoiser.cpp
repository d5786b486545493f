// models::mlp_denoiser: gradients (every parameter and the condition) against finite differences in double,
// per-sample independence, sensitivity to the level of x_t, shapes and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/mlp_denoiser.hpp"
#include "support/denoiser_checks.hpp"

using namespace cpdiff;

using testing::copy_of;
using testing::denoiser_gradcheck;

namespace {
struct tiny_mlp {
  static constexpr std::size_t width = 5, depth = 2;
};
struct one_block {
  static constexpr std::size_t width = 4, depth = 1;
};


std::vector<std::string> names_of(parameter_store<double, cpu>& ps) {
  std::vector<std::string> out;
  for (const auto& e : ps.entries()) out.push_back(e.name);
  return out;
}
}  // namespace

TEST_CASE("mlp_denoiser: gradcheck with the learned timestep table, latent [2, 2]", "[models][mlp_denoiser]") {
  models::mlp_denoiser<tiny_mlp, models::learned, double> net({2, 2}, 3, 10, 11);
  CHECK(names_of(net.parameters()) ==
        std::vector<std::string>{"time_encode.weight", "in.weight", "in.bias", "blocks.0.1.weight", "blocks.0.1.bias",
                                 "blocks.0.3.weight", "blocks.0.3.bias", "blocks.1.1.weight", "blocks.1.1.bias",
                                 "blocks.1.3.weight", "blocks.1.3.bias", "out.weight", "out.bias"});
  CHECK(net.parameters().value(net.parameters().find("in.weight")).shape() == shape{5, 7});   // [W, S + D]
  CHECK(net.parameters().value(net.parameters().find("out.weight")).shape() == shape{4, 5});  // [S, W]
  denoiser_gradcheck(net, 3);
}

TEST_CASE("mlp_denoiser: gradcheck with the sinusoidal timestep MLP, flat latent [5]", "[models][mlp_denoiser]") {
  models::mlp_denoiser<one_block, models::sinusoidal<4, 3>, double> net({5}, 2, 1000, 12);
  denoiser_gradcheck(net, 2);
}

TEST_CASE("mlp_denoiser: samples do not interact, timesteps are per sample, the level of x_t is seen",
          "[models][mlp_denoiser]") {
  models::mlp_denoiser<tiny_mlp, models::learned, double> net({4}, 2, 10, 4);
  testing::check_samples_independent(net);
  tensor<double, cpu> z({3, 4}), cond({3, 2});
  tensor<std::int64_t, cpu> t({3});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 5, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 5, 1);
  t.data()[0] = 1;
  t.data()[1] = 5;
  t.data()[2] = 9;
  const auto all = copy_of(net.forward(z.cview(), t.cview(), cond.cview()));
  // Shifting a sample by a constant (what an InstanceNorm would remove) changes its prediction.
  for (std::size_t j = 0; j < 4; ++j) z.data()[j] += 0.5;
  auto shifted = net.forward(z.cview(), t.cview(), cond.cview());
  double ds = 0;
  for (std::size_t j = 0; j < 4; ++j) ds += std::abs(shifted.data()[j] - all[j]);
  CHECK(ds > 1e-3);
}

TEST_CASE("mlp_denoiser: the default preset runs in float; bad input is a shape_error naming the argument",
          "[models][mlp_denoiser]") {
  models::mlp_denoiser<> big({2, 3}, 4, 1000, 1);
  STATIC_REQUIRE(decltype(big)::width == 128);
  STATIC_REQUIRE(decltype(big)::depth == 2);
  tensor<float, cpu> z({2, 2, 3}), cond({2, 4});
  tensor<std::int64_t, cpu> t({2});
  ops::fill_normal(cpu{}, z.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.f, 1.f, 1, 1);
  t.data()[0] = 0;
  t.data()[1] = 999;
  auto eps = big.forward(z.cview(), t.cview(), cond.cview());
  REQUIRE(eps.shape() == shape{2, 2, 3});
  for (float v : eps.span()) REQUIRE(std::isfinite(v));
  auto dcond = big.backward(z.cview());
  REQUIRE(dcond.shape() == shape{2, 4});
  for (float v : dcond.span()) REQUIRE(std::isfinite(v));

  testing::check_bad_input([] { return models::mlp_denoiser<tiny_mlp, models::learned>({2, 3}, 4, 10, 1); },
                           "mlp_denoiser");
  using net_t = models::mlp_denoiser<tiny_mlp>;
  REQUIRE_THROWS_AS(net_t({2, 3}, 0, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t(shape{}, 4, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t({2, 3}, 4, 0, 1), config_error);
}
