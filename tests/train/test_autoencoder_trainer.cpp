#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "train_fixture.hpp"

using namespace cpdiff;
using testing::tiny_ae;

TEST_CASE("autoencoder_trainer: the reconstruction loss falls clearly on low-rank data", "[train][autoencoder]") {
  const auto data = testing::low_rank_rows(64, 24, 5);
  tiny_ae ae(24, 1);
  train::autoencoder_trainer trainer(ae, data.cview(), {.steps = 600, .batch_size = 16, .adamw = {.lr = 1e-2},
                                                        .schedule = train::lr_schedule::cosine, .warmup_steps = 20,
                                                        .seed = 3});
  const double before = trainer.evaluate();
  const double first = trainer.run(50);
  trainer.run();
  const double last = trainer.run(0);  // no steps: NaN
  CHECK(std::isnan(last));
  const double after = trainer.evaluate();
  // Mean training loss of the first 50 and the last 50 steps, from the history.
  const auto& h = trainer.history();
  REQUIRE(h.size() == 600);
  double tail = 0;
  for (std::size_t i = 550; i < 600; ++i) tail += h[i].loss;
  tail /= 50;
  WARN("AE reconstruction MSE (noise-free, whole data): " << before << " -> " << after
                                                          << "; training loss, first 50 steps " << first
                                                          << ", last 50 " << tail);
  CHECK(trainer.step_count() == 600);
  CHECK(after < 0.1 * before);  // seen: 1.07 -> 0.046
  CHECK(tail < 0.2 * first);    // seen: 0.45 -> 0.056
}

TEST_CASE("autoencoder_trainer: progress lines, loss history and the LR schedule", "[train][autoencoder]") {
  const auto data = testing::low_rank_rows(20, 24, 6);
  tiny_ae ae(24, 1);
  std::ostringstream log;
  train::autoencoder_trainer trainer(ae, data.cview(),
                                     {.steps = 40, .batch_size = 8, .schedule = train::lr_schedule::cosine,
                                      .warmup_steps = 5, .log = &log, .log_every = 10, .history_every = 4});
  const optim::cosine_warmup_lr ref{1e-3, 40, 5, 0};
  for (std::size_t s = 0; s < 40; ++s) {
    REQUIRE(trainer.current_lr() == Approx(ref.lr(s)).epsilon(1e-12));
    trainer.run(1);
    REQUIRE(trainer.optimizer().lr() == Approx(ref.lr(s)).epsilon(1e-12));  // the rate the step used
  }
  // 4 lines "step k/40  loss ...  lr ...  ... steps/s  ETA ..." (no ETA on the last)
  std::istringstream in(log.str());
  std::string line;
  std::size_t lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    INFO(line);
    CHECK(line.rfind("step " + std::to_string(10 * lines) + "/40  loss ", 0) == 0);
    CHECK(line.find("  lr ") != std::string::npos);
    CHECK(line.find(" steps/s") != std::string::npos);
    CHECK((line.find("ETA") != std::string::npos) == (lines < 4));
  }
  CHECK(lines == 4);
  const auto& h = trainer.history();
  REQUIRE(h.size() == 10);
  for (std::size_t i = 0; i < h.size(); ++i) {
    CHECK(h[i].step == 4 * (i + 1));
    CHECK(std::isfinite(h[i].loss));
  }
  // batches of 8 from 20 rows: 8, 8, 4 per epoch; 40 steps = 13 epochs + 1 batch
  CHECK(trainer.batches().epoch() == 13);
  CHECK(train::format_duration(42.4) == "42s");
  CHECK(train::format_duration(187) == "3m07s");
  CHECK(train::format_duration(3725) == "1h02m");
}

TEST_CASE("autoencoder_trainer: epochs set the total; ReduceLROnPlateau halves the rate after flat epochs",
          "[train][autoencoder]") {
  const auto data = testing::low_rank_rows(12, 24, 7);
  tiny_ae ae(24, 1);
  // lr tiny, so the epoch losses stay flat; threshold 50%: no epoch counts as an improvement after the first.
  optim::reduce_lr_on_plateau plateau{.patience = 1, .threshold = 0.5};
  train::autoencoder_trainer trainer(ae, data.cview(),
                                     {.epochs = 6, .batch_size = 4, .adamw = {.lr = 1e-7}, .plateau = plateau});
  CHECK(trainer.total_steps() == 18);
  trainer.run(3 * 3);  // epochs 1 (best), 2 (bad 1), 3 (bad 2 > patience: halve)
  CHECK(trainer.current_lr() == Approx(0.5e-7).epsilon(1e-12));
  trainer.run();
  CHECK(trainer.step_count() == 18);
  CHECK(trainer.current_lr() == Approx(0.25e-7).epsilon(1e-12));  // epochs 4, 5 bad, then halved at 5
}

TEST_CASE("autoencoder_trainer: a NaN in the data stops training at the step that meets it", "[train][autoencoder]") {
  auto data = testing::low_rank_rows(16, 24, 8);
  const std::size_t bad_row = 11;
  data.data()[bad_row * 24 + 5] = std::numeric_limits<float>::quiet_NaN();
  // The batch that holds row 11 in epoch 0 (batches of 4, seed 9): step = position / 4 + 1.
  const auto perm = train::epoch_permutation(16, 9, 0);
  const std::size_t pos = static_cast<std::size_t>(std::find(perm.begin(), perm.end(), bad_row) - perm.begin());
  const std::size_t bad_step = pos / 4 + 1;
  tiny_ae ae(24, 1);
  train::autoencoder_trainer trainer(ae, data.cview(), {.steps = 100, .batch_size = 4, .seed = 9});
  std::string msg;
  try {
    trainer.run(8);
  } catch (const numeric_error& e) {
    msg = e.what();
  }
  INFO(msg);
  REQUIRE(!msg.empty());
  CHECK(msg.find("train::autoencoder_trainer") != std::string::npos);
  CHECK(msg.find("loss is nan at step " + std::to_string(bad_step) + " ") != std::string::npos);
  CHECK(trainer.step_count() == bad_step - 1);
  // No update from the bad step reached the parameters.
  for (float v : ae.parameters().values().span()) REQUIRE(std::isfinite(v));
}

TEST_CASE("autoencoder_trainer: one step is the hand-written step (batch, noise, MSE, AdamW)", "[train][autoencoder]") {
  const auto data = testing::low_rank_rows(10, 24, 4);
  tiny_ae ae(24, 1), ref(24, 1);
  train::autoencoder_trainer trainer(ae, data.cview(), {.batch_size = 4, .adamw = {.lr = 2e-3}, .seed = 17});
  trainer.run(1);
  // by hand: rows perm[0..4) of epoch 0, noise from rng{seed, 0}, MSE against the clean rows, AdamW
  const auto perm = train::epoch_permutation(10, 17, 0);
  tensor<float, cpu> x({4, 24});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 24; ++j) x.data()[i * 24 + j] = data.data()[perm[i] * 24 + j];
  optim::adamw opt(ref.parameters(), {.lr = 2e-3});
  nn::mse_loss<float> mse;
  rng g{17, 0};
  opt.zero_grad();
  const double loss = mse.forward(ref.forward_train(x.cview(), g), x.cview());
  ref.backward_train(mse.backward());
  opt.step();
  CHECK(trainer.history().at(0).loss == loss);
  CHECK(testing::same_bits(ae.parameters().values().data(), ref.parameters().values().data(), ref.parameters().size()));
}

TEST_CASE("check_grads_finite names the parameter and the step", "[train][guard]") {
  tiny_ae ae(24, 1);
  auto& ps = ae.parameters();
  ops::fill(cpu{}, ps.grads(), 0.f);
  train::check_grads_finite("test", ps, 3, 0.5);  // all finite: no throw
  const auto id = ps.find(ps.entries()[2].name);
  ps.grad(id).data()[1] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(train::check_grads_finite("test", ps, 3, 0.5),
                      Catch::Contains("'" + ps.entries()[2].name + "'") && Catch::Contains("at step 3"));
}

TEST_CASE("autoencoder_trainer: bad data and options are rejected with the field named", "[train][autoencoder]") {
  tiny_ae ae(24, 1);
  tensor<float, cpu> wrong({4, 23});
  REQUIRE_THROWS_WITH(train::autoencoder_trainer(ae, wrong.cview()),
                      Catch::Contains("autoencoder_trainer") && Catch::Contains("[4, 23]"));
  const auto data = testing::low_rank_rows(8, 24, 1);
  REQUIRE_THROWS_AS(train::autoencoder_trainer(ae, data.cview(), {.batch_size = 0}), config_error);
  REQUIRE_THROWS_WITH(train::autoencoder_trainer(ae, data.cview(), {.checkpoint_every = 10}),
                      Catch::Contains("checkpoint_path"));
  REQUIRE_THROWS_WITH(train::autoencoder_trainer(ae, data.cview(), {.warmup_steps = 10}),
                      Catch::Contains("warmup_steps"));
  REQUIRE_THROWS_AS(train::autoencoder_trainer(ae, data.cview(), {.adamw = {.lr = -1}}), config_error);
}
