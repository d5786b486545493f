#include <catch2/catch.hpp>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "support/denoiser_checks.hpp"

using namespace cpdiff;

namespace {
struct tiny_unet {
  static constexpr std::array<std::size_t, 4> channels{2, 3, 3, 4};
  static constexpr std::size_t kernel = 3;
};

}  // namespace

TEST_CASE("pdiff_unet: gradcheck with the learned timestep table (parameters and condition)", "[models][unet]") {
  models::pdiff_unet<tiny_unet, models::learned, double> net({2, 3}, 4, 10, 11);
  CHECK(net.sequence_length() == 10);
  testing::denoiser_gradcheck(net, 2);
}

TEST_CASE("pdiff_unet: gradcheck with the sinusoidal timestep MLP", "[models][unet]") {
  models::pdiff_unet<tiny_unet, models::sinusoidal<4, 3>, double> net({2, 3}, 3, 1000, 12);
  testing::denoiser_gradcheck(net, 3);
}

TEST_CASE("pdiff_unet: the paper's size (latent [4, 117], condition 512) runs and keeps shapes", "[models][unet]") {
  models::pdiff_unet<> net({4, 117}, 512, 1000, 1);
  CHECK(net.sequence_length() == 980);
  tensor<float, cpu> z({2, 4, 117}), cond({2, 512});
  tensor<std::int64_t, cpu> t({2});
  ops::fill_normal(cpu{}, z.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.f, 1.f, 1, 1);
  t.data()[0] = 0;
  t.data()[1] = 999;
  auto eps = net.forward(z.cview(), t.cview(), cond.cview());
  REQUIRE(eps.shape() == shape{2, 4, 117});
  for (float v : eps.span()) REQUIRE(std::isfinite(v));
}

TEST_CASE("pdiff_unet: bad input is a shape_error naming the argument", "[models][unet]") {
  models::pdiff_unet<tiny_unet> net({2, 3}, 4, 10, 1);
  tensor<float, cpu> z({2, 2, 3}), cond({2, 4}), bad_cond({2, 5}), bad_z({2, 3, 3});
  tensor<std::int64_t, cpu> t({2}), bad_t({3});
  t.data()[0] = t.data()[1] = 0;
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), bad_cond.cview()), Catch::Contains("condition"));
  REQUIRE_THROWS_WITH(net.forward(bad_z.cview(), t.cview(), cond.cview()), Catch::Contains("latent"));
  REQUIRE_THROWS_WITH(net.forward(z.cview(), bad_t.cview(), cond.cview()), Catch::Contains("timesteps"));
  t.data()[1] = 10;
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), cond.cview()), Catch::Contains("timestep 10"));
}
