#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"
#include "train_fixture.hpp"

using namespace cpdiff;
using testing::tiny_ae;
using testing::tiny_unet;

namespace {
// Same parameter names as tiny_ae_cfg, other channel counts (so other shapes).
struct wide_ae_cfg {
  static constexpr std::size_t fold = 2, kernel = 3;
  static constexpr std::array<std::size_t, 2> enc{2, 4}, dec{4, 2};
};

// A copy of checkpoint `from` at `to` with element i of tensor `name` set to v (of the tensor's own dtype).
template <class V>
void write_tampered(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& name,
                    std::size_t i, V v) {
  const io::safetensors_file f = io::load_safetensors(from);
  io::safetensors_writer w;
  for (const auto& [k, value] : f.metadata()) w.set_metadata(k, value);
  for (const auto& e : f.tensors()) {
    std::vector<std::byte> b(f.raw(e.name).begin(), f.raw(e.name).end());
    if (e.name == name) {
      REQUIRE(io::st_dtype_size(e.dtype) == sizeof(V));
      REQUIRE((i + 1) * sizeof(V) <= b.size());
      std::memcpy(b.data() + i * sizeof(V), &v, sizeof(V));
    }
    w.add_raw(e.name, e.dtype, e.shape, b);
  }
  w.save(to);
}

// Everything that must match after an exact resume.
template <class Trainer>
void require_same_state(Trainer& a, Trainer& b) {
  auto& pa = a.model().parameters();
  auto& pb = b.model().parameters();
  REQUIRE(pa.size() == pb.size());
  CHECK(testing::same_bits(pa.values(), pb.values()));
  auto sa = a.optimizer().state(), sb = b.optimizer().state();
  CHECK(sa.step == sb.step);
  REQUIRE(sa.buffers.size() == sb.buffers.size());
  for (std::size_t i = 0; i < sa.buffers.size(); ++i) {
    INFO(sa.buffers[i].name);
    CHECK(testing::same_bits(sa.buffers[i].data, sb.buffers[i].data));
  }
  REQUIRE((a.ema() != nullptr) == (b.ema() != nullptr));
  if (a.ema()) {
    auto ea = a.ema()->state(), eb = b.ema()->state();
    CHECK(ea.step == eb.step);
    for (std::size_t i = 0; i < ea.buffers.size(); ++i)
      CHECK(testing::same_bits(ea.buffers[i].data, eb.buffers[i].data));
  }
  CHECK(a.step_count() == b.step_count());
  CHECK(a.batches().epoch() == b.batches().epoch());
  CHECK(a.batches().position() == b.batches().position());
  CHECK(a.current_lr() == b.current_lr());
  REQUIRE(a.plateau().has_value() == b.plateau().has_value());
  if (a.plateau()) {
    CHECK(a.plateau()->lr == b.plateau()->lr);
    CHECK(a.plateau()->best == b.plateau()->best);
    CHECK(a.plateau()->num_bad_epochs == b.plateau()->num_bad_epochs);
    CHECK(a.plateau()->cooldown_counter == b.plateau()->cooldown_counter);
    CHECK(a.plateau()->last_epoch == b.plateau()->last_epoch);
  }
  REQUIRE(a.history().size() == b.history().size());
  for (std::size_t i = 0; i < a.history().size(); ++i) {
    REQUIRE(a.history()[i].step == b.history()[i].step);
    REQUIRE(a.history()[i].loss == b.history()[i].loss);
  }
}

train::train_options full_options(std::size_t steps) {
  // every piece of state in play: cosine with warm-up, plateau, EMA with warm-up, clipping, short epochs
  return {.steps = steps, .batch_size = 6, .adamw = {.lr = 3e-3}, .schedule = train::lr_schedule::cosine,
          .warmup_steps = 50, .plateau = optim::reduce_lr_on_plateau{.patience = 3, .threshold = 0.05},
          .clip_grad_norm = 0.5, .ema_decay = 0.995, .ema_warmup = true, .seed = 12};
}
}  // namespace

TEST_CASE("autoencoder_trainer: 2k steps straight == 1k + checkpoint + new objects + resume + 1k, bit for bit",
          "[train][checkpoint]") {
  testing::temp_dir dir("ae_resume");
  const auto path = dir.path / "ae.safetensors";
  const auto data = testing::low_rank_rows(20, 24, 3);

  tiny_ae ae_a(24, 1);
  train::autoencoder_trainer straight(ae_a, data.cview(), full_options(2000));
  straight.run(2000);

  {
    tiny_ae ae_b(24, 1);
    train::autoencoder_trainer first(ae_b, data.cview(), full_options(2000));
    first.run(1000);
    first.save_checkpoint(path);
  }
  tiny_ae ae_c(24, 777);  // other initial weights: everything must come from the checkpoint
  train::autoencoder_trainer second(ae_c, data.cview(), full_options(2000));
  second.resume(path);
  CHECK(second.step_count() == 1000);
  second.run();  // up to the planned 2000
  REQUIRE(second.step_count() == 2000);
  require_same_state(straight, second);
  // the plateau acted in this run (so its state mattered): 2000 steps of batches of 6 from 20 rows = 500 epochs
  CHECK(straight.plateau()->last_epoch == 500);
  CHECK(straight.plateau()->lr < 3e-3);
  WARN("AE resume: final training loss " << straight.history().back().loss << ", plateau factor "
                                         << straight.plateau()->lr / 3e-3);
}

TEST_CASE("diffusion_trainer: 2k straight == 1k + checkpoint + resume + 1k with a joint encoder, bit for bit",
          "[train][checkpoint]") {
  testing::temp_dir dir("diff_resume");
  const auto path = dir.path / "diff.safetensors";
  const auto z = testing::class_latents(20, 2, 3, 4, 6);
  tensor<float, cpu> table({4, 3});
  for (std::size_t k = 0; k < 12; ++k) table.data()[k] = philox_normal(1, 0, k);
  std::vector<std::int64_t> ids(20);
  for (std::size_t i = 0; i < 20; ++i) ids[i] = static_cast<std::int64_t>(i % 4);
  const auto conds = [&] {
    return train::condition_set<float>::by_id(std::span<const std::int64_t>(ids), table.cview());
  };
  using enc_t = testing::linear_condition_encoder<3, 4>;
  using trainer_t = train::diffusion_trainer<tiny_unet, enc_t>;

  tiny_unet net_a({2, 3}, 4, 100, 1);
  enc_t enc_a;
  trainer_t straight(net_a, enc_a, diffusion::noise_schedule(100), z.cview(), conds(), full_options(2000));
  straight.run(2000);
  {
    tiny_unet net_b({2, 3}, 4, 100, 1);
    enc_t enc_b;
    trainer_t first(net_b, enc_b, diffusion::noise_schedule(100), z.cview(), conds(), full_options(2000));
    first.run(600);
    first.run(400);  // run() in pieces is the same as in one go
    first.save_checkpoint(path);
  }
  tiny_unet net_c({2, 3}, 4, 100, 555);
  enc_t enc_c;
  enc_c.g = {4242, 0};
  ops::fill(cpu{}, enc_c.ps->values(), 0.25f);
  trainer_t second(net_c, enc_c, diffusion::noise_schedule(100), z.cview(), conds(), full_options(2000));
  second.resume(path);
  second.run(1000);
  require_same_state(straight, second);
  CHECK(testing::same_bits(enc_a.ps->values(), enc_c.ps->values()));
  auto oa = straight.encoder_optimizer()->state(), oc = second.encoder_optimizer()->state();
  CHECK(oa.step == oc.step);
  for (std::size_t i = 0; i < oa.buffers.size(); ++i)
    CHECK(testing::same_bits(oa.buffers[i].data, oc.buffers[i].data));
}

TEST_CASE("checkpoint file: one safetensors file, exact dtypes, written atomically", "[train][checkpoint]") {
  testing::temp_dir dir("ae_file");
  const auto path = dir.path / "ckpt.safetensors";
  const auto data = testing::low_rank_rows(10, 24, 3);
  tiny_ae ae(24, 1);
  train::autoencoder_trainer trainer(ae, data.cview(), {.batch_size = 4, .ema_decay = 0.9, .seed = 5});
  trainer.run(7);
  trainer.save_checkpoint(path);
  CHECK(dir.files() == std::vector<std::string>{"ckpt.safetensors"});  // no temporary left behind
  trainer.run(3);
  trainer.save_checkpoint(path);  // replaces the old one
  CHECK(dir.files() == std::vector<std::string>{"ckpt.safetensors"});

  const auto f = io::load_safetensors(path);
  CHECK(f.metadata().at("trainer") == "autoencoder");
  CHECK(f.metadata().at("step") == "10");
  for (const auto& e : ae.parameters().entries()) {
    INFO(e.name);
    REQUIRE(f.at("model/" + e.name).dtype == io::st_dtype::F32);
    REQUIRE(f.at("optimizer/" + e.name + ".exp_avg").dtype == io::st_dtype::F32);
    REQUIRE(f.at("ema/" + e.name).dtype == io::st_dtype::F32);
  }
  CHECK(f.at("optimizer/step").dtype == io::st_dtype::U64);
  CHECK(f.at("optimizer/step").shape.empty());
  CHECK(f.to_i64("optimizer/step") == std::vector<std::int64_t>{10});
  CHECK(f.to_i64("trainer/step") == std::vector<std::int64_t>{10});
  CHECK(f.at("history/loss").shape == std::vector<std::size_t>{10});
  // The stored parameters are the model's, bit for bit.
  const auto first = f.to_f32("model/" + ae.parameters().entries()[0].name);
  CHECK(testing::same_bits(first.data(), ae.parameters().values().data(), first.size()));

  // A failed save (no such folder) throws io_error and leaves nothing.
  REQUIRE_THROWS_AS(trainer.save_checkpoint(dir.path / "missing" / "x.safetensors"), io_error);
  CHECK(dir.files() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("checkpoint_every writes the checkpoint during run()", "[train][checkpoint]") {
  testing::temp_dir dir("ae_every");
  const auto path = dir.path / "auto.safetensors";
  const auto data = testing::low_rank_rows(10, 24, 3);
  tiny_ae ae(24, 1);
  train::autoencoder_trainer trainer(ae, data.cview(),
                                     {.batch_size = 4, .seed = 5, .checkpoint_every = 10, .checkpoint_path = path});
  trainer.run(25);
  CHECK(dir.files() == std::vector<std::string>{"auto.safetensors"});
  CHECK(io::load_safetensors(path).metadata().at("step") == "20");
  tiny_ae ae2(24, 2);
  train::autoencoder_trainer again(ae2, data.cview(), {.batch_size = 4, .seed = 5});
  again.resume(path);
  CHECK(again.step_count() == 20);
  CHECK(again.history().size() == 20);
}

TEST_CASE("double models checkpoint as F64 and resume exactly", "[train][checkpoint]") {
  testing::temp_dir dir("ae_f64");
  const auto path = dir.path / "f64.safetensors";
  const auto f = testing::low_rank_rows(10, 24, 3);
  tensor<double, cpu> data({10, 24});
  for (std::size_t i = 0; i < f.size(); ++i) data.data()[i] = f.data()[i];
  using ae_t = models::pdiff_autoencoder<testing::tiny_ae_cfg, double>;
  ae_t a(24, 1), b(24, 1), c(24, 9);
  train::autoencoder_trainer straight(a, data.cview(), {.batch_size = 4, .seed = 5});
  straight.run(40);
  train::autoencoder_trainer first(b, data.cview(), {.batch_size = 4, .seed = 5});
  first.run(25);
  first.save_checkpoint(path);
  CHECK(io::load_safetensors(path).at("model/" + b.parameters().entries()[0].name).dtype == io::st_dtype::F64);
  train::autoencoder_trainer second(c, data.cview(), {.batch_size = 4, .seed = 5});
  second.resume(path);
  second.run(15);
  require_same_state(straight, second);
}

TEST_CASE("resume rejects a checkpoint of another model or setup, naming the tensor, and changes nothing",
          "[train][checkpoint]") {
  testing::temp_dir dir("reject");
  const auto path = dir.path / "ae.safetensors";
  const auto data = testing::low_rank_rows(10, 24, 3);
  {
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), {.batch_size = 4, .seed = 5});
    t.run(5);
    t.save_checkpoint(path);
  }
  tiny_ae probe(24, 1);
  const std::string first_name = probe.parameters().entries()[0].name;

  // The autoencoders record their configuration (describe()) in checkpoints: another architecture is refused by
  // it, naming both, before the tensors are compared (the name and shape checks serve models without one).
  SECTION("other architecture: refused by its configuration") {
    models::pdiff_autoencoder<testing::other_ae_cfg> other(24, 1);
    train::autoencoder_trainer t(other, data.cview(), {.batch_size = 4});
    REQUIRE_THROWS_AS(t.resume(path), io_error);
    REQUIRE_THROWS_WITH(t.resume(path), Catch::Contains("was written for the model") &&
                                            Catch::Contains(probe.describe()) && Catch::Contains(other.describe()));
  }
  SECTION("same names, other shapes: refused by the configuration, nothing changes") {
    models::pdiff_autoencoder<wide_ae_cfg> wide(24, 1);
    train::autoencoder_trainer t(wide, data.cview(), {.batch_size = 4});
    const std::vector<float> before(wide.parameters().values().data(),
                                    wide.parameters().values().data() + wide.parameters().size());
    REQUIRE_THROWS_AS(t.resume(path), io_error);
    REQUIRE_THROWS_WITH(t.resume(path), Catch::Contains(wide.describe()));
    CHECK(testing::same_bits(before.data(), wide.parameters().values().data(), before.size()));  // untouched
    CHECK(t.step_count() == 0);
  }
  SECTION("trainer with EMA, checkpoint without: the EMA tensor is missing") {
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), {.batch_size = 4, .ema_decay = 0.9});
    REQUIRE_THROWS_WITH(t.resume(path), Catch::Contains("missing ") && Catch::Contains("'ema/" + first_name + "'"));
  }
  SECTION("a checkpoint with an extra tensor (here: EMA) for a trainer without") {
    const auto with_ema = dir.path / "ema.safetensors";
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), {.batch_size = 4, .ema_decay = 0.9});
    t.run(2);
    t.save_checkpoint(with_ema);
    tiny_ae ae2(24, 1);
    train::autoencoder_trainer plain(ae2, data.cview(), {.batch_size = 4});
    REQUIRE_THROWS_WITH(plain.resume(with_ema), Catch::Contains("unexpected ") && Catch::Contains("'ema/"));
    CHECK(plain.step_count() == 0);
  }
  SECTION("another trainer kind") {
    tiny_unet net({2, 3}, 4, 10, 1);
    const auto z = testing::class_latents(10, 2, 3, 2, 1);
    tensor<float, cpu> rows({10, 4});
    ops::fill(cpu{}, rows.view(), 0.f);
    train::diffusion_trainer t(net, diffusion::noise_schedule(10), z.cview(),
                               train::condition_set<float>::per_sample(rows.cview()), {.batch_size = 4});
    REQUIRE_THROWS_WITH(t.resume(path), Catch::Contains("trainer = 'diffusion'") && Catch::Contains("'autoencoder'"));
  }
  SECTION("another dataset size") {
    const auto more = testing::low_rank_rows(12, 24, 3);
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, more.cview(), {.batch_size = 4});
    REQUIRE_THROWS_AS(t.resume(path), config_error);
  }
  SECTION("a truncated file, and no file") {
    const auto cut = dir.path / "cut.safetensors";
    std::filesystem::copy_file(path, cut);
    std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 5);
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), {.batch_size = 4});
    REQUIRE_THROWS_AS(t.resume(cut), io_error);
    REQUIRE_THROWS_AS(t.resume(dir.path / "nope.safetensors"), io_error);
  }
}

TEST_CASE("resume rejects values no run can have saved, naming the file and the tensor, and changes nothing",
          "[train][checkpoint]") {
  testing::temp_dir dir("values");
  const auto path = dir.path / "ae.safetensors", bad = dir.path / "bad.safetensors";
  const auto data = testing::low_rank_rows(10, 24, 3);
  const train::train_options opts{.batch_size = 4, .plateau = optim::reduce_lr_on_plateau{}, .ema_decay = 0.9,
                                  .seed = 5};
  {
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), opts);
    t.run(6);
    t.save_checkpoint(path);
  }
  tiny_ae probe(24, 1);
  const std::string param = probe.parameters().entries()[0].name;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto refused = [&](const std::string& tensor, const std::string& needle) {
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), opts);
    const std::vector<float> before(ae.parameters().values().data(),
                                    ae.parameters().values().data() + ae.parameters().size());
    INFO(tensor);
    REQUIRE_THROWS_AS(t.resume(bad), io_error);
    REQUIRE_THROWS_WITH(t.resume(bad), Catch::Contains(bad.string()) && Catch::Contains("'" + tensor + "'") &&
                                           Catch::Contains(needle));
    CHECK(t.step_count() == 0);
    CHECK(testing::same_bits(before.data(), ae.parameters().values().data(), before.size()));
  };
  SECTION("non-finite parameters and state") {
    write_tampered(path, bad, "model/" + param, 1, std::numeric_limits<float>::quiet_NaN());
    refused("model/" + param, "holds nan at element 1");
    write_tampered(path, bad, "ema/" + param, 0, std::numeric_limits<float>::infinity());
    refused("ema/" + param, "holds inf at element 0");
    write_tampered(path, bad, "optimizer/" + param + ".exp_avg", 2, std::numeric_limits<float>::quiet_NaN());
    refused("optimizer/" + param + ".exp_avg", "finite");
  }
  SECTION("a negative second moment") {
    write_tampered(path, bad, "optimizer/" + param + ".exp_avg_sq", 0, -1.0f);
    refused("optimizer/" + param + ".exp_avg_sq", "holds -1 at element 0, expected a finite value >= 0");
  }
  SECTION("NaN or negative learning rate, NaN losses") {
    write_tampered(path, bad, "plateau/lr", 0, nan);
    refused("plateau/lr", "is nan");
    write_tampered(path, bad, "plateau/lr", 0, -1e-3);
    refused("plateau/lr", "is -0.001, expected a finite value >= 0");
    write_tampered(path, bad, "plateau/lr", 0, 1e308);  // the plateau only lowers adamw.lr (1e-3)
    refused("plateau/lr", "above the learning rate 0.001");
    write_tampered(path, bad, "trainer/epoch_loss_sum", 0, nan);
    refused("trainer/epoch_loss_sum", "is nan");
    write_tampered(path, bad, "history/loss", 3, nan);
    refused("history/loss", "element 3 is nan");
  }
  SECTION("absurd counters") {
    write_tampered(path, bad, "trainer/step", 0, ~std::uint64_t{0});
    refused("trainer/step", "is 18446744073709551615, not a step count of a real run");
    write_tampered(path, bad, "optimizer/step", 0, std::uint64_t{7});
    refused("optimizer/step", "is 7, more than trainer/step 6");
    write_tampered(path, bad, "trainer/position", 0, std::uint64_t{11});
    refused("trainer/position", "is 11, more than its dataset size 10");
    write_tampered(path, bad, "ema/num_updates", 0, std::uint64_t{1000});
    refused("ema/num_updates", "more than trainer/step 6");
    write_tampered(path, bad, "trainer/step", 0, std::uint64_t{4});
    refused("optimizer/step", "is 6, more than trainer/step 4");
    write_tampered(path, bad, "history/step", 5, std::uint64_t{7});
    refused("history/step", "element 5 is 7, expected steps increasing from 1 up to trainer/step 6");
  }
  SECTION("a non-monotonic history") {
    write_tampered(path, bad, "history/step", 2, std::uint64_t{1});
    refused("history/step", "element 2 is 1, expected steps increasing");
  }
  SECTION("the untouched checkpoint resumes") {
    tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, data.cview(), opts);
    t.resume(path);
    CHECK(t.step_count() == 6);
  }
}
