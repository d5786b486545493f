// pipeline::cond_pdiff::loss_by_timestep: the trained denoiser's eps MSE at given timesteps over the training
// latents; the same figure in any batching, equal to ddpm_objective's loss computed by hand, and named errors.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/models/mlp_denoiser.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/pipeline/cond_pdiff.hpp"

using namespace cpdiff;

namespace {
struct loss_t_denoiser {
  static constexpr std::size_t width = 16, depth = 1;
};
const train::train_options loss_t_run{.steps = 30, .batch_size = 8, .adamw = {.lr = 1e-3}, .seed = 4};
}  // namespace

TEST_CASE("cond_pdiff::loss_by_timestep: the denoiser's eps MSE per timestep, batch-independent",
          "[pipeline][loss_by_timestep]") {
  constexpr std::size_t m = 13, n = 40;
  std::vector<float> x(m * n), rows(m);
  for (std::size_t r = 0; r < m; ++r) {
    rows[r] = r % 2 ? 0.5f : -0.5f;
    for (std::size_t i = 0; i < n; ++i) x[r * n + i] = float(std::sin(0.3 * double(i) + 0.7 * double(r)));
  }
  models::style_autoencoder<models::style_small> ae(n, 1);
  models::mlp_denoiser<loss_t_denoiser> net(ae.latent_shape(), 1, 1000, 2);
  train::identity_condition<float, cpu> cond;
  pipeline::cond_pdiff sys(ae, net, cond, diffusion::noise_schedule(1000));
  const auto row_view = const_view<float>(rows.data(), {m, 1});
  CHECK_THROWS_WITH(sys.loss_by_timestep(row_view, std::array<std::size_t, 1>{0}, 5),
                    Catch::Contains("loss_by_timestep") && Catch::Contains("train the autoencoder first"));
  // (an empty tensor has rank 0 and size 1: both stages ask for the autoencoder's latents by rank)
  CHECK_THROWS_WITH(sys.train_diffusion(row_view, loss_t_run),
                    Catch::Contains("train_diffusion") && Catch::Contains("train the autoencoder first"));
  sys.train_autoencoder(const_view<float>(x.data(), {m, n}), loss_t_run);
  sys.train_diffusion(row_view, loss_t_run);

  const std::array<std::size_t, 3> ts{0, 400, 999};
  const std::vector<double> one = sys.loss_by_timestep(row_view, ts, 5);          // one batch of 13
  const std::vector<double> split = sys.loss_by_timestep(row_view, ts, 5, 4);     // 4 + 4 + 4 + 1
  REQUIRE(one.size() == ts.size());
  REQUIRE(split.size() == ts.size());
  for (std::size_t i = 0; i < ts.size(); ++i) {
    CHECK(std::isfinite(one[i]));
    CHECK(one[i] > 0);
    CHECK(split[i] == Approx(one[i]).epsilon(1e-5));
  }
  // another seed draws other noise
  CHECK(sys.loss_by_timestep(row_view, std::array<std::size_t, 1>{400}, 6)[0] != Approx(one[1]).epsilon(1e-6));

  // By hand at t = 400: x_t = sqrt(acp) z0 + sqrt(1 - acp) eps with eps from stream t, then mean (eps_hat - eps)^2.
  diffusion::ddpm_objective<float, cpu> obj(diffusion::noise_schedule(1000));
  const std::vector<std::int64_t> t400(m, 400);
  rng g{5, 400, 0};
  auto prep = obj.prepare(sys.latents().cview(), std::span<const std::int64_t>(t400), g);
  const double by_hand = obj.loss_and_grad(net.forward(prep.x_t, prep.t, row_view)).loss;
  CHECK(one[1] == Approx(by_hand).epsilon(1e-5));

  CHECK_THROWS_WITH(sys.loss_by_timestep(row_view, std::array<std::size_t, 1>{1000}, 5),
                    Catch::Contains("timestep 1000 out of range [0, 1000)"));
  CHECK_THROWS_WITH(sys.loss_by_timestep(const_view<float>(rows.data(), {m - 1, 1}), ts, 5),
                    Catch::Contains("condition rows: expected [13, D_in]") && Catch::Contains("[12, 1]"));
}

TEST_CASE("loss_profile_timesteps and format_loss_by_timestep", "[pipeline][loss_by_timestep]") {
  CHECK(pipeline::loss_profile_timesteps(1000) == std::vector<std::size_t>{0, 10, 50, 100, 250, 500, 750, 999});
  CHECK(pipeline::loss_profile_timesteps(200) == std::vector<std::size_t>{0, 2, 10, 20, 50, 100, 150, 199});
  CHECK_THROWS_WITH(pipeline::loss_profile_timesteps(0), Catch::Contains("the schedule has no timesteps"));
  const std::vector<std::size_t> ts{0, 999};
  const std::vector<double> loss{0.5, 0.25};
  CHECK(pipeline::format_loss_by_timestep(ts, loss) == "t=0 0.5, t=999 0.25");
  CHECK_THROWS_WITH(pipeline::format_loss_by_timestep(ts, std::vector<double>{0.5}),
                    Catch::Contains("2 timesteps but 1 losses"));
}
