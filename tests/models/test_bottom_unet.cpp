#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/bottom_unet.hpp"
#include "support/fixtures.hpp"
#include "support/denoiser_checks.hpp"

using namespace cpdiff;
using testing::copy_of;

namespace {
struct tiny_unet {  // S = 6 -> Sp 8, bottom [2, 2], F = 4
  static constexpr std::array<std::size_t, 3> channels{2, 3, 2};
  static constexpr std::size_t kernel = 3, groups = 1;
};
struct tiny_grouped {  // GroupNorm with 2 groups; 4 levels
  static constexpr std::array<std::size_t, 4> channels{2, 4, 4, 2};
  static constexpr std::size_t kernel = 3, groups = 2;
};

}  // namespace

TEST_CASE("bottom_unet: gradcheck with the learned timestep table and a condition projection",
          "[models][bottom_unet]") {
  models::bottom_unet<tiny_unet, models::learned, double> net({1, 6}, 3, 10, 11);
  CHECK(net.padded_length() == 8);
  CHECK(net.bottom_size() == 4);
  CHECK(net.projects_condition());
  CHECK(net.parameters().entries().back().name == "cond_proj.bias");
  testing::denoiser_gradcheck(net, 2);
}

TEST_CASE("bottom_unet: gradcheck with the sinusoidal timestep MLP, grouped norms, condition added as is",
          "[models][bottom_unet]") {
  models::bottom_unet<tiny_grouped, models::sinusoidal<4, 3>, double> net({2, 5}, 4, 1000, 12);  // S 10 -> Sp 16
  CHECK(net.padded_length() == 16);
  REQUIRE(net.bottom_size() == 4);  // [2, 2]
  CHECK_FALSE(net.projects_condition());
  testing::denoiser_gradcheck(net, 3);
}

TEST_CASE("bottom_unet: the paper's preset (latent 256 -> bottom [32, 2], F = 64) runs and keeps shapes",
          "[models][bottom_unet]") {
  using paper = models::bottom_unet<models::bottom_unet_paper>;
  static_assert(paper::depth == 8 && paper::fold_unit == 128);
  CHECK(paper::padded_length(256) == 256);
  CHECK(paper::bottom_length(256) == 2);
  CHECK(paper::bottom_size(256) == 64);
  CHECK(paper::padded_length(468) == 512);  // a p-diff latent [4, 117]
  CHECK(paper::bottom_size(468) == 128);
  paper net({256}, 64, 1000, 1);
  CHECK_FALSE(net.projects_condition());
  tensor<float, cpu> z({2, 256}), cond({2, 64}), g({2, 256});
  tensor<std::int64_t, cpu> t({2});
  ops::fill_normal(cpu{}, z.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.f, 1.f, 1, 1);
  ops::fill_normal(cpu{}, g.view(), 0.f, 1.f, 1, 2);
  t.data()[0] = 0;
  t.data()[1] = 999;
  auto eps = net.forward(z.cview(), t.cview(), cond.cview());
  REQUIRE(eps.shape() == shape{2, 256});
  for (float v : eps.span()) REQUIRE(std::isfinite(v));
  auto dcond = net.backward(g.cview());
  REQUIRE(dcond.shape() == shape{2, 64});
  for (float v : dcond.span()) REQUIRE(std::isfinite(v));
}

namespace {
double total_diff(const std::vector<double>& a, const_view<double> b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += std::abs(a[i] - b.data()[i]);
  return d;
}
}  // namespace

TEST_CASE("bottom_unet: the condition and e_bot(t) are added to the bottom Linear's output", "[models][bottom_unet]") {
  // b = bottom(h) + e_bot(t) + P(cond): a shift of one term undone by the opposite shift of another leaves eps_hat
  // unchanged (while the shift alone changes it).
  const double delta[] = {0.3, -0.2, 0.5, 0.1};
  tensor<double, cpu> z({1, 6});
  tensor<std::int64_t, cpu> t({1});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 3, 0);
  t.data()[0] = 7;

  SECTION("identity: cond + delta, bottom.bias - delta; table row t (its e_bot part) + delta, bottom.bias - delta") {
    models::bottom_unet<tiny_unet, models::learned, double> net({6}, 4, 10, 3);
    REQUIRE_FALSE(net.projects_condition());
    tensor<double, cpu> cond({1, 4});
    ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 3, 1);
    const auto base = copy_of(net.forward(z.cview(), t.cview(), cond.cview()));
    auto& ps = net.parameters();
    auto bias = ps.value(ps.find("bottom.bias"));
    auto table = ps.value(ps.find("time_encode.weight"));  // [10, Sp + F] = [10, 12]
    REQUIRE(table.shape() == shape{10, 12});
    for (std::size_t j = 0; j < 4; ++j) cond.data()[j] += delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) > 1e-6);
    for (std::size_t j = 0; j < 4; ++j) bias.data()[j] -= delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) < 1e-12);
    for (std::size_t j = 0; j < 4; ++j) table(7, 8 + j) += delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) > 1e-6);
    for (std::size_t j = 0; j < 4; ++j) bias.data()[j] -= delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) < 1e-12);
  }
  SECTION("projection: cond_proj.bias + delta, bottom.bias - delta") {
    models::bottom_unet<tiny_unet, models::learned, double> net({6}, 3, 10, 3);
    REQUIRE(net.projects_condition());
    tensor<double, cpu> cond({1, 3});
    ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 3, 1);
    const auto base = copy_of(net.forward(z.cview(), t.cview(), cond.cview()));
    auto& ps = net.parameters();
    auto bias = ps.value(ps.find("bottom.bias")), pbias = ps.value(ps.find("cond_proj.bias"));
    for (std::size_t j = 0; j < 4; ++j) pbias.data()[j] += delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) > 1e-6);
    for (std::size_t j = 0; j < 4; ++j) bias.data()[j] -= delta[j];
    CHECK(total_diff(base, net.forward(z.cview(), t.cview(), cond.cview())) < 1e-12);
  }
}

TEST_CASE("bottom_unet: samples do not interact (GroupNorm), timesteps are per sample", "[models][bottom_unet]") {
  models::bottom_unet<tiny_grouped, models::learned, double> net({12}, 3, 10, 4);
  testing::check_samples_independent(net);
}

TEST_CASE("bottom_unet: bad input is a shape_error naming the argument", "[models][bottom_unet]") {
  testing::check_bad_input([] { return models::bottom_unet<tiny_unet>({2, 3}, 4, 10, 1); }, "bottom_unet");
  using net_t = models::bottom_unet<tiny_unet>;
  REQUIRE_THROWS_AS(net_t({2, 3}, 0, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t(shape{}, 4, 10, 1), config_error);
  REQUIRE_THROWS_AS(net_t({2, 3}, 4, 0, 1), config_error);
}

// PyTorch reference: tests/fixtures/make_appendix_fixtures.py (case bottom_unet_tiny, next to the layer fixtures).
TEST_CASE("bottom_unet: PyTorch parity (names, eps_hat, d cond, every parameter gradient)",
          "[models][bottom_unet][parity]") {
  testing::fixture f("../appendix/bottom_unet_tiny");
  models::bottom_unet<tiny_grouped, models::learned, double> net({2, 5}, 3, 10, 1);
  REQUIRE(net.projects_condition());
  auto& ps = net.parameters();
  const auto& keys = f.json().at("state");
  REQUIRE(keys.size() == ps.count());
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entries()[i];
    REQUIRE(e.name == keys[i].get<std::string>());  // the state_dict's names, in its order
    f.load_into("state__" + e.name, ps.value(param_id{i}));
  }
  const auto tf = f.tensor("t");
  tensor<std::int64_t, cpu> t({tf.size()});
  for (std::size_t i = 0; i < tf.size(); ++i) t.data()[i] = static_cast<std::int64_t>(tf.data()[i]);
  const auto z = f.tensor("z"), cond = f.tensor("cond");
  testing::require_close(net.forward(z.cview(), t.cview(), cond.cview()), f.tensor("eps").cview(), 1e-10, "eps_hat");
  ops::fill(cpu{}, ps.grads(), 0.0);
  testing::require_close(net.backward(f.tensor("g").cview()), f.tensor("dcond").cview(), 1e-10, "d cond");
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entries()[i];
    testing::require_close(ps.grad(param_id{i}), f.tensor("grad__" + e.name).cview(), 1e-10, "d " + e.name);
  }
}
