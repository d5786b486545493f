// pipeline::cond_pdiff's latent scale: latents beyond the samplers' clip range [-1, 1] (a Linear latent) are
// scaled by s = 1 / max|E(x)| for the diffusion, and generate() decodes z / s; Tanh latents keep s = 1.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/mlp_denoiser.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/pipeline/cond_pdiff.hpp"

using namespace cpdiff;

namespace {
struct tiny_denoiser {
  static constexpr std::size_t width = 16, depth = 1;
};
struct tiny_pdiff_ae {
  static constexpr std::size_t fold = 2, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{2, 2, 2, 2}, dec{2, 4, 4, 2};
};

// M rows of n values.
std::vector<float> data(std::size_t m, std::size_t n, float amplitude) {
  std::vector<float> x(m * n);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t i = 0; i < n; ++i) x[r * n + i] = amplitude * float(std::sin(0.3 * double(i) + 0.7 * double(r)));
  return x;
}

const train::train_options short_run{.steps = 20, .batch_size = 8, .adamw = {.lr = 1e-3}, .seed = 3};
}  // namespace

TEST_CASE("cond_pdiff: a Linear latent beyond [-1, 1] is scaled into it, and generate decodes z / s",
          "[pipeline][latent_scale]") {
  constexpr std::size_t m = 16, n = 40;
  const auto x = data(m, n, 40.f);
  models::style_autoencoder<models::style_small> ae(n, 1);
  // A Linear latent grows to escape the latent noise over a long training; here, 10x larger weights at once.
  auto w = ae.parameters().value(ae.parameters().find("encoder_fc.weight"));
  for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] *= 10.f;

  models::mlp_denoiser<tiny_denoiser> net(ae.latent_shape(), 1, 1000, 2);
  train::identity_condition<float, cpu> cond;
  pipeline::cond_pdiff sys(ae, net, cond, diffusion::noise_schedule(1000));
  sys.train_autoencoder(const_view<float>(x.data(), {m, n}), short_run);

  // the training latents, unscaled, after training (running statistics)
  const auto raw = ae.encode(const_view<float>(x.data(), {m, n}));
  const std::vector<float> z(raw.data(), raw.data() + raw.size());
  float peak = 0;
  for (float v : z) peak = std::max(peak, std::abs(v));
  REQUIRE(peak > 1.f);  // otherwise this test would not exercise the scale
  const float s = sys.latent_scale();
  CHECK(s == Approx(1.0 / peak).epsilon(1e-6));
  float scaled_peak = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    CHECK(sys.latents().data()[i] == Approx(s * z[i]).margin(1e-6));
    scaled_peak = std::max(scaled_peak, std::abs(sys.latents().data()[i]));
  }
  CHECK(scaled_peak == Approx(1.0).epsilon(1e-6));

  // generate: the vectors are the decoder's output for last_latents() / s
  const std::vector<float> rows(m, 0.5f);
  sys.train_diffusion(const_view<float>(rows.data(), {m, 1}), short_run);
  rng g{9, 0};
  const std::vector<float> row{0.5f};
  const auto v = sys.generate(std::span<const float>(row), 3, g, {.ddim_steps = 5});
  std::vector<float> unscaled(sys.last_latents());
  REQUIRE(unscaled.size() == 3 * models::style_small::latent);
  for (float& u : unscaled) u /= s;
  const auto expect = ae.decode(const_view<float>(unscaled.data(), {3, models::style_small::latent}));
  REQUIRE(v.size() == expect.size());
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == Approx(expect.data()[i]).margin(1e-4));
}

TEST_CASE("cond_pdiff: Tanh latents (p-diff AE) keep the scale 1", "[pipeline][latent_scale]") {
  constexpr std::size_t m = 8, n = 40;
  const auto x = data(m, n, 40.f);
  models::pdiff_autoencoder<tiny_pdiff_ae> ae(n, 1);
  models::mlp_denoiser<tiny_denoiser> net(ae.latent_shape(), 1, 1000, 2);
  train::identity_condition<float, cpu> cond;
  pipeline::cond_pdiff sys(ae, net, cond, diffusion::noise_schedule(1000));
  sys.train_autoencoder(const_view<float>(x.data(), {m, n}), short_run);
  CHECK(sys.latent_scale() == 1.f);
  for (std::size_t i = 0; i < sys.latents().size(); ++i) CHECK(std::abs(sys.latents().data()[i]) <= 1.f);
}
