// models::mlp_denoiser: gradients (every parameter and the condition) against finite differences in double,
// per-sample independence, sensitivity to the level of x_t, shapes and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/models/mlp_denoiser.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {
struct tiny_mlp {
  static constexpr std::size_t width = 5, depth = 2;
};
struct one_block {
  static constexpr std::size_t width = 4, depth = 1;
};

std::vector<double> copy_of(const_view<double> v) { return {v.data(), v.data() + v.size()}; }

shape batch_of(std::size_t n, const shape& latent) {
  std::size_t dims[shape::max_rank] = {n};
  for (std::size_t i = 0; i < latent.rank(); ++i) dims[i + 1] = latent[i];
  return shape::from_range(dims, dims + latent.rank() + 1);
}

// L = sum(eps_hat * r): the analytic d cond and parameter gradients against central differences.
template <class Net>
void denoiser_gradcheck(Net& net, std::size_t n) {
  auto& ps = net.parameters();
  const shape zs = batch_of(n, net.latent_shape());
  tensor<double, cpu> z(zs), cond({n, net.cond_dim()}), r(zs);
  tensor<std::int64_t, cpu> t({n});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 1, 1);
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 1, 2);
  for (std::size_t i = 0; i < n; ++i) t.data()[i] = static_cast<std::int64_t>(3 * i + 1);  // distinct, per sample
  REQUIRE(net.forward(z.cview(), t.cview(), cond.cview()).shape() == zs);
  ops::fill(cpu{}, ps.grads(), 0.0);
  auto dcond = net.backward(r.cview());
  REQUIRE(dcond.shape() == cond.shape());
  std::vector<testing::grad_target> targets;
  targets.push_back({"cond", cond.data(), copy_of(dcond)});
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> g) {
    targets.push_back({e.name, v.data(), copy_of(g)});
  });
  testing::check_numeric([&] { return testing::dot(net.forward(z.cview(), t.cview(), cond.cview()), r.cview()); },
                         targets);
}

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
  tensor<double, cpu> z({3, 4}), cond({3, 2});
  tensor<std::int64_t, cpu> t({3});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 5, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 5, 1);
  t.data()[0] = 1;
  t.data()[1] = 5;
  t.data()[2] = 9;
  const auto all = copy_of(net.forward(z.cview(), t.cview(), cond.cview()));
  for (std::size_t i = 0; i < 3; ++i) {
    auto one = net.forward(z.cview().slice(i, i + 1), t.cview().slice(i, i + 1), cond.cview().slice(i, i + 1));
    for (std::size_t j = 0; j < 4; ++j) CHECK(one.data()[j] == Approx(all[i * 4 + j]).margin(1e-12));
  }
  // another timestep for sample 0 changes only sample 0
  t.data()[0] = 2;
  auto moved = net.forward(z.cview(), t.cview(), cond.cview());
  double d0 = 0, d12 = 0;
  for (std::size_t j = 0; j < 4; ++j) d0 += std::abs(moved.data()[j] - all[j]);
  for (std::size_t j = 4; j < 12; ++j) d12 += std::abs(moved.data()[j] - all[j]);
  CHECK(d0 > 1e-6);
  CHECK(d12 == 0);
  // Shifting a sample by a constant (what an InstanceNorm would remove) changes its prediction.
  t.data()[0] = 1;
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
  tensor<float, cpu> z({2, 2, 3}), cond({2, 4}), bad_cond({2, 5}), bad_z({2, 3, 3}), flat_z({2, 6}), empty({0, 2, 3});
  tensor<std::int64_t, cpu> t({2}), bad_t({3});
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

  models::mlp_denoiser<tiny_mlp, models::learned> net({2, 3}, 4, 10, 1);
  REQUIRE_THROWS_WITH(net.backward(z.cview()), Catch::Contains("before forward"));
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), bad_cond.cview()),
                      Catch::Contains("mlp_denoiser::forward") && Catch::Contains("condition") &&
                          Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_WITH(net.forward(bad_z.cview(), t.cview(), cond.cview()),
                      Catch::Contains("latent") && Catch::Contains("[2, 3, 3]"));
  REQUIRE_THROWS_WITH(net.forward(flat_z.cview(), t.cview(), cond.cview()), Catch::Contains("latent"));
  REQUIRE_THROWS_AS(net.forward(empty.cview(), t.cview(), cond.cview()), shape_error);
  REQUIRE_THROWS_WITH(net.forward(z.cview(), bad_t.cview(), cond.cview()), Catch::Contains("timesteps"));
  t.data()[1] = 10;  // outside the learned table
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), cond.cview()), Catch::Contains("timestep 10"));
  t.data()[1] = 1;
  net.forward(z.cview(), t.cview(), cond.cview());
  REQUIRE_THROWS_WITH(net.backward(flat_z.cview()), Catch::Contains("mlp_denoiser::backward"));
  using net_t = models::mlp_denoiser<tiny_mlp>;
  REQUIRE_THROWS_AS(net_t({2, 3}, 0, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t(shape{}, 4, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t({2, 3}, 4, 0, 1), config_error);
}
