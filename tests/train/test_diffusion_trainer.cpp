#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"
#include "train_fixture.hpp"

using namespace cpdiff;
using testing::tiny_unet;

using testing::tiny_problem;

TEST_CASE("diffusion_trainer: the denoising loss falls on a tiny conditional problem", "[train][diffusion]") {
  tiny_problem p;
  tiny_unet net({2, 3}, 4, 100, 1);
  train::diffusion_trainer trainer(net, diffusion::noise_schedule(100), p.z.cview(), p.conditions(),
                                   {.steps = 600, .batch_size = 8, .adamw = {.lr = 1e-2}, .seed = 3});
  REQUIRE(trainer.ema() != nullptr);  // p-diff's EMA by default
  CHECK(trainer.ema()->decay() == 0.9999);
  const double first = trainer.run(100);
  trainer.run(400);
  const double last = trainer.run(100);
  WARN("DDPM eps-MSE, mean of the first 100 steps " << first << ", of the last 100 " << last);
  CHECK(trainer.step_count() == 600);
  CHECK(last < 0.6 * first);  // seen: 0.99 -> 0.52
  CHECK(trainer.ema()->num_updates() == 600);
}

TEST_CASE("diffusion_trainer: one step is the hand-written step (batch, prepare, U-Net, AdamW, EMA)",
          "[train][diffusion]") {
  tiny_problem p;
  tiny_unet net({2, 3}, 4, 50, 1), ref({2, 3}, 4, 50, 1);
  train::diffusion_trainer trainer(net, diffusion::noise_schedule(50), p.z.cview(), p.conditions(),
                                   {.batch_size = 5, .adamw = {.lr = 3e-3}, .ema_decay = 0.9, .seed = 8});
  trainer.run(1);
  const auto perm = train::epoch_permutation(24, 8, 0);
  tensor<float, cpu> z0({5, 2, 3}), cond({5, 4});
  for (std::size_t i = 0; i < 5; ++i) {
    for (std::size_t k = 0; k < 6; ++k) z0.data()[i * 6 + k] = p.z.data()[perm[i] * 6 + k];
    for (std::size_t j = 0; j < 4; ++j) cond.data()[i * 4 + j] = p.table.data()[(perm[i] % 3) * 4 + j];
  }
  diffusion::ddpm_objective<float> obj(diffusion::noise_schedule(50));
  optim::adamw opt(ref.parameters(), {.lr = 3e-3});
  optim::ema avg(ref.parameters(), 0.9, /*warmup=*/true);  // the trainer's default: EMA warm-up on
  rng g{8, 0};
  opt.zero_grad();
  const auto prep = obj.prepare(z0.cview(), g);
  const auto lg = obj.loss_and_grad(ref.forward(prep.x_t, prep.t, cond.cview()));
  ref.backward(lg.d_eps_hat);
  opt.step();
  avg.update();
  CHECK(trainer.history().at(0).loss == lg.loss);
  auto& ps = ref.parameters();
  CHECK(testing::same_bits(net.parameters().values().data(), ps.values().data(), ps.size()));
  const auto a = trainer.ema()->state(), b = avg.state();
  REQUIRE(a.buffers.size() == b.buffers.size());
  for (std::size_t i = 0; i < a.buffers.size(); ++i)
    CHECK(testing::same_bits(a.buffers[i].data.data(), b.buffers[i].data.data(), b.buffers[i].data.size()));
}

TEST_CASE("diffusion_trainer: a jointly trained condition encoder gets the condition gradient", "[train][diffusion]") {
  tiny_problem p;
  tensor<float, cpu> onehot({3, 3});  // D_in = 3 -> encoder -> D = 4
  for (std::size_t k = 0; k < 9; ++k) onehot.data()[k] = k % 4 == 0 ? 1.f : 0.f;
  tiny_unet net({2, 3}, 4, 100, 1);
  testing::linear_condition_encoder<3, 4> enc;
  const std::vector<float> w0(enc.ps->values().data(), enc.ps->values().data() + enc.ps->size());
  using trainer_t = train::diffusion_trainer<tiny_unet, testing::linear_condition_encoder<3, 4>>;
  static_assert(trainer_t::joint_encoder);
  static_assert(!train::diffusion_trainer<tiny_unet>::joint_encoder);
  trainer_t trainer(net, enc, diffusion::noise_schedule(100), p.z.cview(),
                    train::condition_set<float>::by_id(std::span<const std::int64_t>(p.ids), onehot.cview()),
                    {.steps = 300, .batch_size = 8, .adamw = {.lr = 1e-2}, .clip_grad_norm = 1.0, .seed = 4});
  REQUIRE(trainer.encoder_optimizer() != nullptr);
  const double first = trainer.run(60);
  trainer.run(180);
  const double last = trainer.run(60);
  WARN("with a jointly trained linear condition encoder: first 60 steps " << first << ", last 60 " << last);
  CHECK(last < 0.8 * first);
  CHECK(trainer.encoder_optimizer()->step_count() == 300);
  double moved = 0;
  for (std::size_t i = 0; i < w0.size(); ++i) moved += std::abs(enc.ps->values().data()[i] - w0[i]);
  CHECK(moved > 1e-2);
}

TEST_CASE("diffusion_trainer: per-sample condition rows, NaN guard and bad inputs", "[train][diffusion]") {
  tiny_problem p;
  tensor<float, cpu> rows({24, 4});
  for (std::size_t i = 0; i < 24; ++i)
    for (std::size_t j = 0; j < 4; ++j) rows.data()[i * 4 + j] = p.table.data()[(i % 3) * 4 + j];
  const auto bad_row = 7;
  rows.data()[bad_row * 4 + 2] = std::numeric_limits<float>::infinity();
  const auto perm = train::epoch_permutation(24, 2, 0);
  const std::size_t pos = static_cast<std::size_t>(std::find(perm.begin(), perm.end(), bad_row) - perm.begin());
  tiny_unet net({2, 3}, 4, 100, 1);
  train::diffusion_trainer trainer(net, diffusion::noise_schedule(100), p.z.cview(),
                                   train::condition_set<float>::per_sample(rows.cview()),
                                   {.batch_size = 6, .seed = 2});
  REQUIRE_THROWS_WITH(trainer.run(4), Catch::Contains("train::diffusion_trainer") &&
                                          Catch::Contains("at step " + std::to_string(pos / 6 + 1) + " "));
  CHECK(trainer.step_count() == pos / 6);

  // wrong latent shape, condition count, condition id
  tensor<float, cpu> z_wrong({24, 3, 2});
  REQUIRE_THROWS_WITH(train::diffusion_trainer(net, diffusion::noise_schedule(100), z_wrong.cview(), p.conditions()),
                      Catch::Contains("diffusion_trainer") && Catch::Contains("[24, 3, 2]"));
  tensor<float, cpu> z_few({20, 2, 3});
  REQUIRE_THROWS_AS(train::diffusion_trainer(net, diffusion::noise_schedule(100), z_few.cview(), p.conditions()),
                    shape_error);
  std::vector<std::int64_t> bad_ids = p.ids;
  bad_ids[5] = 3;
  REQUIRE_THROWS_WITH(train::condition_set<float>::by_id(std::span<const std::int64_t>(bad_ids), p.table.cview()),
                      Catch::Contains("ids[5] = 3"));
}

namespace {
// tiny_unet that records the matrix-product precision each forward and backward ran under.
struct precision_probe : tiny_unet {
  using tiny_unet::tiny_unet;
  std::vector<matmul_precision> seen;
  cview forward(cview z, tview t, cview cond) {
    seen.push_back(current_matmul_precision());
    return tiny_unet::forward(z, t, cond);
  }
  cview backward(cview d) {
    CHECK(current_matmul_precision() == seen.back());  // the whole step under one precision
    return tiny_unet::backward(d);
  }
};
}  // namespace

TEST_CASE("diffusion_trainer: bf16_fraction runs the first part of the run under matmul_precision::bf16",
          "[train][diffusion][precision]") {
  tiny_problem p;
  precision_probe net({2, 3}, 4, 50, 1);
  std::ostringstream log;
  train::diffusion_trainer trainer(net, diffusion::noise_schedule(50), p.z.cview(), p.conditions(),
                                   {.steps = 20, .batch_size = 4, .bf16_fraction = 0.75, .seed = 2, .log = &log,
                                    .log_every = 0});
  trainer.run();
  REQUIRE(net.seen.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    INFO("step " << i);
    CHECK(net.seen[i] == (i < 15 ? matmul_precision::bf16 : matmul_precision::fp32));
  }
  CHECK(current_matmul_precision() == matmul_precision::fp32);  // the scope ended with the step
  CHECK(log.str().find("step 15: matrix products bf16 -> fp32 (bf16_fraction 0.75)") != std::string::npos);
  // The default is fp32 throughout; bad fractions are refused.
  precision_probe plain({2, 3}, 4, 50, 1);
  train::diffusion_trainer(plain, diffusion::noise_schedule(50), p.z.cview(), p.conditions(), {.steps = 3}).run();
  CHECK(plain.seen == std::vector<matmul_precision>(3, matmul_precision::fp32));
  CHECK_THROWS_WITH(train::diffusion_trainer(plain, diffusion::noise_schedule(50), p.z.cview(), p.conditions(),
                                             {.steps = 3, .bf16_fraction = 1.5}),
                    Catch::Contains("bf16_fraction must be in [0, 1]"));
}

TEST_CASE("matmul_precision_scope nests and restores", "[train][precision]") {
  CHECK(current_matmul_precision() == matmul_precision::fp32);
  {
    const matmul_precision_scope a(matmul_precision::bf16);
    CHECK(current_matmul_precision() == matmul_precision::bf16);
    {
      const matmul_precision_scope b(matmul_precision::fp32);
      CHECK(current_matmul_precision() == matmul_precision::fp32);
    }
    CHECK(current_matmul_precision() == matmul_precision::bf16);
  }
  CHECK(current_matmul_precision() == matmul_precision::fp32);
}
