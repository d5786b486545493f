// models::peft_classifier: PEFT's LoRA on any base's Linears through the generic fine-tuning loop
// (train::pretrain_base / finetune_lora), LoRA dropout on an attached nn::linear against nn::lora_linear's, and
// a ViT as a Hugging Face folder (models/vit_hf.hpp).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <ratio>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/data/fashion_mnist.hpp"
#include "cpdiff/models/peft_classifier.hpp"
#include "cpdiff/models/vit_hf.hpp"
#include "cpdiff/nn/lora_linear.hpp"
#include "cpdiff/train/finetune.hpp"

using namespace cpdiff;

namespace {

// A ViT small enough for a test: 28x28 images in 16 patches of 7x7, width 32, two layers.
struct vit_test_config {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 32, depth = 2, heads = 2, mlp_dim = 64,
                               classes = 10;
};
using test_vit = models::vit<vit_test_config>;
using test_peft_vit = models::peft_classifier<test_vit>;
struct vit_test_wider : vit_test_config {  // another architecture, for the cache check
  static constexpr std::size_t mlp_dim = 96;
};

bool have_fashion_mnist() {
  return std::filesystem::exists(data::fashion_mnist_images_path(data::default_fashion_mnist_dir, "train"));
}

// A host copy of a parameter's values or gradients.
template <class T>
std::vector<T> host(tensor_view<T> v) {
  return to_host(cpu{}, tensor_view<const T>(v));
}
void copy_values(tensor_view<double> from, tensor_view<double> to) {
  const auto h = host(from);
  from_host(cpu{}, std::span<const double>(h), to);
}

std::vector<float> base_values(test_peft_vit& m) {
  std::vector<float> out;
  auto& ps = m.parameters();
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const auto& e = ps.entry(param_id{i});
    if (e.name.find(".lora_") != std::string::npos) continue;
    const auto v = host(ps.value(param_id{i}));
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::filesystem::path temp_dir(const char* tag) {
  return std::filesystem::temp_directory_path() / (std::string("cpdiff_") + tag + "_" + std::to_string(::getpid()));
}

}  // namespace

TEST_CASE("peft_classifier: modes flip the trainable flags; reset_lora gives the base function", "[models][lora][peft]") {
  test_peft_vit m(3, {.target_modules = {"query", "value"}, .rank = 4, .alpha = 8});
  CHECK(m.lora_parameters() == 2 * 2 * 4 * (32 + 32));
  auto& ps = m.parameters();
  auto check_mode = [&](bool lora_trains) {
    for (const auto& e : ps.entries()) {
      const bool lora = e.name.ends_with(".lora_A.weight") || e.name.ends_with(".lora_B.weight");
      INFO(e.name);
      CHECK(e.trainable == (lora == lora_trains));
    }
  };
  check_mode(true);  // finetune after construction
  m.set_mode(models::lora_mode::pretrain);
  check_mode(false);
  m.set_mode(models::lora_mode::finetune);

  tensor<float, cpu> x({3, 784});
  ops::fill_uniform(cpu{}, x.view(), 0.f, 1.f, 5, 0);
  const auto base = to_host(cpu{}, m.forward(x.cview()));
  m.base().for_each_linear([&](auto& lin) {
    if (lin.lora_rank() > 0) ops::fill_normal(cpu{}, ps.value(lin.lora_b_id()), 0.f, 0.5f, 9, lin.lora_b_id().index);
  });
  CHECK(to_host(cpu{}, m.forward(x.cview())) != base);
  m.reset_lora(11);
  CHECK(to_host(cpu{}, m.forward(x.cview())) == base);
  const lora::adapter a = m.adapter();
  CHECK(a.contains("vit.encoder.layer.1.attention.attention.value"));
  CHECK(a.parameter_count() == m.lora_parameters());

  tensor<float, cpu> wrong({3, 783});
  CHECK_THROWS_WITH(m.forward(wrong.cview()), Catch::Contains("models::peft_classifier::forward") &&
                                                 Catch::Contains("expected [N, 784]"));
  CHECK_THROWS_WITH(test_peft_vit(1, {.target_modules = {"qkv"}}), Catch::Contains("target module 'qkv'"));
}

// The same rotated-images shift as the MLP's fine-tuning test, on a transformer: a base pre-trained on upright
// images, then a rank-4 LoRA on query and value only (the paper's placement) through the generic loop.
TEST_CASE("peft_classifier: a ViT pre-trained on Fashion-MNIST, LoRA on query/value recovers rotated images",
          "[models][lora][peft][finetune]") {
  if (!have_fashion_mnist()) {
    WARN("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): test skipped");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto train_split = data::load_fashion_mnist(data::default_fashion_mnist_dir, "train", 4000);
  const auto test_split = data::load_fashion_mnist(data::default_fashion_mnist_dir, "t10k", 1000);
  const data::task clean{}, rotated = data::task::of_style(data::style::rotate(90));
  const auto clean_train = data::make_split(train_split, clean), clean_test = data::make_split(test_split, clean);
  const auto rot_train = data::make_split(train_split, rotated), rot_test = data::make_split(test_split, rotated);

  test_peft_vit model(2024, {.rank = 4, .alpha = 16, .dropout = 0.1});
  const auto pre = train::pretrain_base(model, clean_train, clean_test, {.epochs = 3, .lr = 2e-3, .seed = 1});
  const double base_rot = model.accuracy(rot_test.images, rot_test.labels);
  const std::vector<float> base = base_values(model);

  std::vector<lora::adapter> checkpoints;
  train::finetune_config cfg{.epochs = 3, .lr = 3e-3, .seed = 7, .collect_last = 5};
  cfg.on_checkpoint = [&](std::size_t, const lora::adapter& a) { checkpoints.push_back(a); };
  const auto ft = train::finetune_lora(model, rot_train, rot_test, cfg);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "peft_classifier test: ViT base on clean " << pre.test_accuracy << ", on rotate(90) " << base_rot
            << ", LoRA on rotate(90) " << ft.test_accuracy << " (" << secs << " s)\n";
  CHECK(pre.test_accuracy > 0.6);         // observed 0.67 (3 epochs of 4,000 images)
  CHECK(base_rot < 0.3);                  // observed 0.073
  CHECK(ft.test_accuracy > base_rot + 0.25);  // observed 0.541
  CHECK(base_values(model) == base);  // frozen
  REQUIRE(checkpoints.size() == 5);
  CHECK(checkpoints.back().contains("vit.encoder.layer.0.attention.attention.query"));
  // The last checkpoint is the model's LoRA; another model of the same base given it computes the same accuracy.
  test_peft_vit other(5, {.rank = 4, .alpha = 16});
  other.copy_base_from(model);
  other.load_adapter(checkpoints.back());
  CHECK(other.accuracy(rot_test.images, rot_test.labels) == ft.test_accuracy);
}

// nn::linear's attached LoRA with dropout computes what nn::lora_linear computes: the same masks (Philox, one
// stream per masked forward), the same y, dx, dA and dB.
TEST_CASE("linear::attach_lora: LoRA dropout equals nn::lora_linear's", "[nn][lora][dropout]") {
  parameter_store<double, cpu> ps_a, ps_b;
  rng init_a{1, 0}, init_b{1, 0};
  nn::linear<6, 5, double> lin(ps_a, "proj", init_a);
  nn::lora_linear<6, 5, 2, std::ratio<4>, double> ref(ps_b, "proj", init_b, 0.3);
  rng attach_g{2, 0};
  lin.attach_lora(2, 4.0, attach_g);
  // the same W, b, A and a nonzero B in both
  copy_values(ps_a.value(ps_a.find("proj.weight")), ps_b.value(ps_b.find("proj.base_layer.weight")));
  copy_values(ps_a.value(ps_a.find("proj.bias")), ps_b.value(ps_b.find("proj.base_layer.bias")));
  ops::fill_normal(cpu{}, ps_a.value(lin.lora_a_id()), 0.0, 1.0, 3, 0);
  ops::fill_normal(cpu{}, ps_a.value(lin.lora_b_id()), 0.0, 1.0, 3, 1);
  copy_values(ps_a.value(lin.lora_a_id()), ps_b.value(ref.lora_A_id()));
  copy_values(ps_a.value(lin.lora_b_id()), ps_b.value(ref.lora_B_id()));
  rng drop_g{42, 0};  // lora_linear draws from init_b: put both on (42, 0)
  init_b = rng{42, 0};
  lin.set_lora_dropout(0.3, drop_g);
  tensor<double, cpu> x({4, 6}), dy({4, 5});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 5, 1);
  for (int step = 0; step < 2; ++step) {  // two forwards: two fresh masks
    ops::fill(cpu{}, ps_a.grads(), 0.0);
    ops::fill(cpu{}, ps_b.grads(), 0.0);
    const auto ya = to_host(cpu{}, lin.forward(x.cview())), yb = to_host(cpu{}, ref.forward(x.cview()));
    const auto dxa = to_host(cpu{}, lin.backward(dy.cview())), dxb = to_host(cpu{}, ref.backward(dy.cview()));
    for (std::size_t i = 0; i < ya.size(); ++i) CHECK(ya[i] == Approx(yb[i]).epsilon(1e-12));
    for (std::size_t i = 0; i < dxa.size(); ++i) CHECK(dxa[i] == Approx(dxb[i]).epsilon(1e-12));
    const auto gaa = host(ps_a.grad(lin.lora_a_id())), gab = host(ps_b.grad(ref.lora_A_id()));
    const auto gba = host(ps_a.grad(lin.lora_b_id())), gbb = host(ps_b.grad(ref.lora_B_id()));
    for (std::size_t i = 0; i < gaa.size(); ++i) CHECK(gaa[i] == Approx(gab[i]).epsilon(1e-12));
    for (std::size_t i = 0; i < gba.size(); ++i) CHECK(gba[i] == Approx(gbb[i]).epsilon(1e-12));
  }
  // Out of training mode: no mask, the plain LoRA path.
  lin.set_training(false);
  ref.set_training(false);
  const auto ya = to_host(cpu{}, lin.forward(x.cview())), yb = to_host(cpu{}, ref.forward(x.cview()));
  for (std::size_t i = 0; i < ya.size(); ++i) CHECK(ya[i] == Approx(yb[i]).epsilon(1e-12));
  parameter_store<double, cpu> ps_c;
  rng g{1, 0};
  nn::linear<6, 5, double> plain(ps_c, "plain", g);
  CHECK_THROWS_WITH(plain.set_lora_dropout(0.1, g), Catch::Contains("'plain' has no LoRA"));
  CHECK_THROWS_WITH(lin.set_lora_dropout(1.0, g), Catch::Contains("must be in [0, 1)"));
}

TEST_CASE("vit_hf: a ViT as a Hugging Face folder; the cache check; bad folders", "[models][vit][io]") {
  const auto dir = temp_dir("vit_hf");
  std::filesystem::remove_all(dir);
  test_peft_vit m(7, {.rank = 2, .alpha = 4});
  const nlohmann::json settings = {{"pretrain", {{"epochs", 3}, {"seed", 1}}}};
  models::save_hf_vit(dir, m.base(), settings);
  const nlohmann::json cfg = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  CHECK(cfg["hidden_size"] == 32);
  CHECK(cfg["num_hidden_layers"] == 2);
  CHECK(cfg["intermediate_size"] == 64);
  CHECK(cfg["id2label"]["9"] == "Ankle boot");
  const io::safetensors_file f = io::load_safetensors(dir / "model.safetensors");
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.contains("vit.encoder.layer.1.attention.attention.query.weight"));
  CHECK_FALSE(f.contains("vit.encoder.layer.1.attention.attention.query.lora_A.weight"));

  test_peft_vit back(8, {.rank = 2, .alpha = 4});
  std::string why;
  REQUIRE(models::load_hf_vit(dir, back.base(), settings, &why));
  CHECK(base_values(back) == base_values(m));
  // other settings, another architecture, no folder: not loaded, with the reason
  CHECK_FALSE(models::load_hf_vit(dir, back.base(), {{"pretrain", {{"epochs", 4}, {"seed", 1}}}}, &why));
  CHECK_THAT(why, Catch::Contains("cpdiff") && Catch::Contains("this run needs"));
  models::vit<vit_test_config, float> plain(1);
  models::vit<vit_test_wider> other(1);
  CHECK_FALSE(models::load_hf_vit(dir, other, settings, &why));
  CHECK_THAT(why, Catch::Contains("intermediate_size = 64, this run needs 96"));
  CHECK_FALSE(models::load_hf_vit(dir / "missing", plain, settings, &why));
  // a matching config.json over a truncated weights file is an error, not a silent retrain
  std::filesystem::resize_file(dir / "model.safetensors", 100);
  CHECK_THROWS_WITH(models::load_hf_vit(dir, plain, settings, &why), Catch::Contains("model.safetensors"));
  std::filesystem::remove_all(dir);
}
