#include <catch2/catch.hpp>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("pdiff_autoencoder: latent shapes of SPEC.md (medium: n=73,728 -> [4, 117]; n=2048 -> [4, 3])",
          "[models][autoencoder]") {
  models::pdiff_autoencoder<models::pdiff_medium> big(73728, 1);
  CHECK(big.padded_size() == 73750);
  CHECK(big.latent_shape() == shape{4, 117});
  models::pdiff_autoencoder<models::pdiff_medium> ae(2048, 1);
  CHECK(ae.padded_size() == 2500);
  REQUIRE(ae.latent_shape() == shape{4, 3});

  // The computed shape is what the layers really produce, and decode crops back to n.
  tensor<float, cpu> x({2, 2048});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 3, 0);
  auto z = ae.encode(x.cview());
  REQUIRE(z.shape() == shape{2, 4, 3});
  for (float v : z.span()) REQUIRE(std::abs(v) <= 1.f);  // tanh-bounded
  auto y = ae.decode(z);
  CHECK(y.shape() == shape{2, 2048});
}

TEST_CASE("pdiff_autoencoder: small preset shapes", "[models][autoencoder]") {
  models::pdiff_autoencoder<models::pdiff_small> ae(1050, 1);
  CHECK(ae.padded_size() == 1053);  // (floor(1050/81) + 1) * 81
  CHECK(ae.latent_shape() == shape{2, 13});
  tensor<float, cpu> x({3, 1050});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 3, 0);
  CHECK(ae.encode(x.cview()).shape() == shape{3, 2, 13});
}

namespace {
struct tiny_cfg {
  static constexpr std::size_t fold = 2, kernel = 3;
  static constexpr std::array<std::size_t, 2> enc{2, 3}, dec{3, 2};
};
}  // namespace

TEST_CASE("pdiff_autoencoder: gradcheck of the whole training pass (both noises, clamp)", "[models][autoencoder]") {
  models::pdiff_autoencoder<tiny_cfg, double> ae(13, 5, {0.01, 0.1});
  auto& ps = ae.parameters();
  tensor<double, cpu> x({2, 13});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 9, 0);
  const rng start{77, 0};
  rng g = start;
  auto y = ae.forward_train(x.cview(), g);
  REQUIRE(y.shape() == shape{2, 13});
  tensor<double, cpu> r(y.shape());
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 10, 0);
  ops::fill(cpu{}, ps.grads(), 0.0);
  ae.backward_train(r.cview());
  std::vector<testing::grad_target> targets;
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> gr) {
    targets.push_back({e.name, v.data(), std::vector<double>(gr.data(), gr.data() + gr.size())});
  });
  REQUIRE(targets.size() == 2 * 2 * 2 + 2 * 2 * 2);  // (conv w,b) x 2 per block x 2 blocks, enc + dec
  testing::check_numeric(
      [&] {
        rng gg = start;  // same noise every evaluation
        return testing::dot(ae.forward_train(x.cview(), gg), r.cview());
      },
      targets);
}

TEST_CASE("pdiff_autoencoder: bad input is a shape_error naming the call", "[models][autoencoder]") {
  models::pdiff_autoencoder<models::pdiff_small> ae(100, 1);
  tensor<float, cpu> x({2, 99});
  REQUIRE_THROWS_WITH(ae.encode(x.cview()), Catch::Contains("pdiff_autoencoder::encode") && Catch::Contains("[2, 99]"));
  tensor<float, cpu> z({2, 2, 5});
  REQUIRE_THROWS_AS(ae.decode(z.cview()), shape_error);
  REQUIRE_THROWS_AS(models::pdiff_autoencoder<models::pdiff_small>(0, 1), config_error);
}
