// Tests for cpdiff/train/finetune.hpp and data/tasks.hpp: a real pre-training + LoRA fine-tuning run on a
// shifted Fashion-MNIST task, and the loop's contracts (frozen base, checkpoint hook, reproducibility,
// NaN guard, progress lines, configuration errors) on small synthetic data.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <ratio>
#include <sstream>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/data/fashion_mnist.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/train/finetune.hpp"

using namespace cpdiff;

namespace {

using small_mlp = models::lora_mlp<2, std::ratio<8>, 16>;

// n random "images" whose label is decided by the mean brightness of the first 98 pixels (learnable).
data::labelled_images synthetic(std::size_t n, std::uint64_t seed) {
  data::labelled_images d;
  d.images.resize(n * 784);
  d.labels.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    double s = 0;
    for (std::size_t i = 0; i < 784; ++i) {
      d.images[k * 784 + i] = philox_uniform(seed, k, i);
      if (i < 98) s += d.images[k * 784 + i];
    }
    d.labels[k] = std::min<std::int64_t>(9, std::int64_t((s / 98 - 0.4) * 50 < 0 ? 0 : (s / 98 - 0.4) * 50));
  }
  return d;
}

const data::fashion_mnist_split& fmnist(const char* split) {
  static const data::fashion_mnist_split train = data::load_fashion_mnist(data::default_fashion_mnist_dir, "train");
  static const data::fashion_mnist_split test = data::load_fashion_mnist(data::default_fashion_mnist_dir, "t10k");
  return std::string(split) == "train" ? train : test;
}

bool have_fashion_mnist() {
  return std::filesystem::exists(data::fashion_mnist_images_path(data::default_fashion_mnist_dir, "train"));
}

}  // namespace

// The shift is a 90-degree rotation: the base, trained on upright clean images, falls below chance, and a
// rank-4 LoRA wins most of the accuracy back. (Inverted images break the base as badly, but a rank-4 LoRA
// cannot repair them: 1 - x flips the sign of every fc1 feature, and undoing that, W -> -W, is full rank.)
TEST_CASE("finetune: LoRA recovers a frozen base's accuracy on rotated Fashion-MNIST", "[lora][finetune]") {
  if (!have_fashion_mnist()) {
    WARN("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): test skipped");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const data::task clean{}, rotated = data::task::of_style(data::style::rotate(90));
  const auto clean_train = data::make_split(fmnist("train"), clean, 6000);
  const auto clean_test = data::make_split(fmnist("t10k"), clean, 2000);
  const auto rot_train = data::make_split(fmnist("train"), rotated, 6000);
  const auto rot_test = data::make_split(fmnist("t10k"), rotated, 2000);

  models::lora_mlp<4, std::ratio<16>> model(2024);
  const train::train_result pre = train::pretrain_base(model, clean_train, clean_test, {.epochs = 3, .seed = 1});
  const double base_clean = model.accuracy(clean_test.images, clean_test.labels);
  const double base_shifted = model.accuracy(rot_test.images, rot_test.labels);
  const std::vector<float> base = model.base_weights();

  const train::finetune_config cfg{.epochs = 4, .lr = 3e-3, .seed = 7};
  const train::train_result ft = train::finetune_lora(model, rot_train, rot_test, cfg);
  const double lora_shifted = model.accuracy(rot_test.images, rot_test.labels);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cout << "finetune test: base on clean " << base_clean << ", base on rotate(90) " << base_shifted
            << ", LoRA (r=4, alpha=16) on rotate(90) " << lora_shifted << " (pretrain " << pre.seconds << " s, "
            << pre.steps << " steps; finetune " << ft.seconds << " s, " << ft.steps << " steps; total " << secs
            << " s)\n";
  CHECK(pre.test_accuracy == base_clean);
  CHECK(ft.test_accuracy == lora_shifted);
  CHECK(base_clean > 0.7);                    // a working base (observed 0.778)
  CHECK(base_shifted < 0.2);                  // the shift breaks it (observed 0.0115)
  CHECK(lora_shifted > base_shifted + 0.4);   // LoRA wins most of it back (observed 0.685)
  CHECK(lora_shifted > 0.55);
  CHECK(model.base_weights() == base);        // the base stayed frozen
}

TEST_CASE("finetune: tasks relabel, subset and style the data", "[lora][finetune]") {
  data::fashion_mnist_split s;
  s.count = 4;
  s.images.assign(4 * 784, 0.25f);
  s.labels = {0, 1, 2, 3};
  data::task::label_map_type swap01 = data::task::identity_map;
  std::swap(swap01[0], swap01[1]);
  swap01[2] = -1;  // drop class 2
  const auto d = data::make_split(s, data::task::relabelled("swap01-no2", swap01));
  CHECK(d.labels == std::vector<std::int64_t>{1, 0, 3});
  CHECK(d.images.size() == 3 * 784);
  const auto inv = data::make_split(s, data::task::of_style(data::style::invert()), 2);
  CHECK(inv.size() == 2);
  CHECK(inv.images[5] == 0.75f);
  CHECK(data::task::of_style(data::style::rotate(30)).name == "rotate(30)");
  data::task::label_map_type bad = data::task::identity_map;
  bad[4] = 10;
  REQUIRE_THROWS_AS(data::make_split(s, data::task::relabelled("bad", bad)), config_error);
}

TEST_CASE("finetune: the last K steps go to the hook; runs are reproducible", "[lora][finetune]") {
  const auto train = synthetic(300, 1), test = synthetic(100, 2);
  small_mlp m(3);
  train::pretrain_base(m, train, test, {.epochs = 2, .batch_size = 64});
  CHECK(m.mode() == models::mlp_mode::finetune);
  for (float v : m.fc1().lora_B().span()) REQUIRE(v == 0.0f);

  data::lora_collection coll(data::lora_layout(m.adapter()));
  const std::size_t c = coll.add_condition("synthetic");
  std::vector<std::size_t> steps;
  train::finetune_config cfg{.epochs = 3, .batch_size = 64, .seed = 11, .collect_last = 6};
  auto append = coll.appender(c);
  cfg.on_checkpoint = [&](std::size_t step, const lora::adapter& a) {
    steps.push_back(step);
    append(step, a);
  };
  const auto r = train::finetune_lora(m, train, test, cfg);
  CHECK(r.steps == 15);  // 3 epochs of ceil(300 / 64) = 5 batches
  CHECK(r.checkpoints == 6);
  CHECK(steps == std::vector<std::size_t>{10, 11, 12, 13, 14, 15});
  REQUIRE(coll.checkpoint_count(c) == 6);
  CHECK(coll.adapter(c, 5).modules == m.adapter().modules);  // the last step's weights
  CHECK(coll.adapter(c, 4).modules != m.adapter().modules);  // each step moved them

  // Same seed, same base: the same LoRA bit for bit; another seed: another LoRA.
  small_mlp m2(3);
  m2.copy_base_from(m);
  cfg.collect_last = 0;
  train::finetune_lora(m2, train, test, cfg);
  CHECK(m2.adapter() == m.adapter());
  cfg.seed = 12;
  train::finetune_lora(m2, train, test, cfg);
  CHECK(m2.adapter().modules != m.adapter().modules);
}

TEST_CASE("finetune: progress lines, NaN guard and configuration errors", "[lora][finetune]") {
  const auto train = synthetic(200, 4), test = synthetic(50, 5);
  small_mlp m(6);
  std::ostringstream log;
  train::finetune_config cfg{.epochs = 2, .batch_size = 50, .evaluate_each_epoch = true, .log_every = 2, .log = &log};
  const auto r = train::finetune_lora(m, train, test, cfg);
  CHECK(r.epoch_test_accuracy.size() == 2);
  const std::string text = log.str();
  CHECK_THAT(text, Catch::Contains("finetune epoch 1/2 step 2/8 loss "));
  CHECK_THAT(text, Catch::Contains(" acc "));
  CHECK_THAT(text, Catch::Contains(" steps/s"));
  CHECK_THAT(text, Catch::Contains("finetune epoch 2/2 test acc "));

  // A NaN pixel in every image: ReLU hides it from the loss, the gradient check catches it.
  data::labelled_images bad = train;
  for (std::size_t k = 0; k < bad.size(); ++k) bad.images[k * 784 + 3] = std::numeric_limits<float>::quiet_NaN();
  cfg.log = nullptr;
  REQUIRE_THROWS_AS(train::finetune_lora(m, bad, test, cfg), numeric_error);
  REQUIRE_THROWS_WITH(train::finetune_lora(m, bad, test, cfg),
                      Catch::Contains("finetune") && Catch::Contains("gradient at step 1 of 8"));
  // A NaN logit makes the loss NaN.
  small_mlp broken(8);
  broken.fc2().bias().data()[0] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(train::finetune_lora(broken, train, test, cfg),
                      Catch::Contains("loss is nan at step 1 of 8"));

  train::finetune_config k = cfg;
  k.collect_last = 9;
  k.on_checkpoint = [](std::size_t, const lora::adapter&) {};
  REQUIRE_THROWS_AS(train::finetune_lora(m, train, test, k), config_error);
  k.collect_last = 2;
  k.on_checkpoint = nullptr;
  REQUIRE_THROWS_AS(train::finetune_lora(m, train, test, k), config_error);
  train::finetune_config z = cfg;
  z.batch_size = 0;
  REQUIRE_THROWS_AS(train::finetune_lora(m, train, test, z), config_error);
  data::labelled_images wrong = train;
  wrong.labels[0] = 10;
  REQUIRE_THROWS_AS(train::finetune_lora(m, wrong, test, cfg), shape_error);
  wrong = train;
  wrong.images.pop_back();
  REQUIRE_THROWS_AS(train::pretrain_base(m, wrong, test), shape_error);
}
