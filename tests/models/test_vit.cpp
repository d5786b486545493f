// models::vit against Hugging Face's ViTForImageClassification in PyTorch (tests/fixtures/layers/vit_tiny, made by
// make_layer_fixtures.py): every parameter loaded by its name, logits, d images and every parameter's gradient.
#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/vit.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"
#include "support/parity.hpp"

using namespace cpdiff;

namespace {
struct vit_tiny {
  static constexpr std::size_t channels = 1, image = 8, patch = 4, dim = 8, depth = 2, heads = 2, mlp_dim = 16,
                               classes = 3;
};
}  // namespace

TEST_CASE("vit: logits and every gradient match Hugging Face's ViTForImageClassification", "[models][vit]") {
  testing::fixture f("vit_tiny");
  for (const char* k : {"channels", "image", "patch", "dim", "depth", "heads", "mlp_dim", "classes"})
    REQUIRE(f.args()[k] != nullptr);
  REQUIRE(f.args()["depth"] == vit_tiny::depth);
  REQUIRE(f.args()["dim"] == vit_tiny::dim);
  models::vit<vit_tiny, double> net(1);
  auto& ps = net.parameters();
  std::vector<std::pair<std::string, param_id>> grads;
  for (std::size_t i = 0; i < ps.entries().size(); ++i) {
    f.load_into(ps.entries()[i].name, ps.value(param_id{i}));
    grads.push_back({"d" + ps.entries()[i].name, param_id{i}});
  }
  CHECK(grads.size() == 4 + 2 * 16 + 2 + 2);  // embeddings, two layers, layernorm, classifier
  testing::check_layer_on(cpu{}, net, &ps, f, "vit_tiny", grads);
}

TEST_CASE("vit: the names PEFT's target_modules select; gradcheck; a wrong image names the member",
          "[models][vit]") {
  models::vit<vit_tiny, double> net(3);
  std::size_t queries = 0;
  for (const auto& e : net.parameters().entries())
    if (e.name.ends_with(".attention.attention.query.weight")) ++queries;
  CHECK(queries == 2);
  CHECK(net.parameters().entries()[4].name == "vit.encoder.layer.0.layernorm_before.weight");
  CHECK(net.parameters().entries().back().name == "classifier.bias");
  testing::gradcheck(net, net.parameters(), {2, 1, 8, 8});
  tensor<double, cpu> wrong({1, 1, 8, 7});
  CHECK_THROWS_WITH(net.forward(wrong.cview()), Catch::Contains("vit.embeddings: nn::vit_embeddings::forward"));
}

TEST_CASE("vit with PEFT's LoRA on query and value: unchanged at init, base frozen, gradcheck, PEFT round trip",
          "[models][vit][lora]") {
  models::vit<vit_tiny, double> net(5);
  tensor<double, cpu> x({2, 1, 8, 8});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 4, 0);
  const auto before = to_host(cpu{}, net.forward(x.cview()));
  rng g{7, 0};
  CHECK(lora::attach(net, {"query", "value"}, 2, 4.0, g) == 4);
  CHECK(to_host(cpu{}, net.forward(x.cview())) == before);  // B = 0: exactly the base
  auto& ps = net.parameters();
  std::size_t trainable = 0;
  for (const auto& e : ps.entries())
    if (e.trainable) {
      ++trainable;
      CHECK((e.name.ends_with(".lora_A.weight") || e.name.ends_with(".lora_B.weight") ||
             !e.name.ends_with("query.weight")));
    }
  CHECK(ps.entry(param_id{0}).name == "vit.embeddings.patch_embeddings.projection.weight");
  bool query_frozen = false;
  for (const auto& e : ps.entries())
    if (e.name == "vit.encoder.layer.1.attention.attention.query.weight") query_frozen = !e.trainable;
  CHECK(query_frozen);
  // B random, then every gradient (LoRA's and the still-trainable others') against finite differences; the frozen
  // query / value weights and biases receive nothing (gradcheck checks frozen entries are left alone).
  net.for_each_linear([&](auto& lin) {
    if (lin.lora_rank() > 0) ops::fill_normal(cpu{}, ps.value(lin.lora_b_id()), 0.0, 0.5, 9, lin.lora_b_id().index);
  });
  testing::gradcheck(net, ps, {2, 1, 8, 8});

  const lora::adapter a = lora::attached_adapter(net);
  CHECK(a.size() == 4);
  CHECK(a.rank == 2);
  CHECK(a.alpha == 4.0);
  CHECK(a.target_modules == std::vector<std::string>{"query", "value"});
  CHECK(a.contains("vit.encoder.layer.0.attention.attention.value"));
  CHECK(a.parameter_count() == 4 * (2 * 8 + 8 * 2));
  const auto with_lora = to_host(cpu{}, net.forward(x.cview()));
  CHECK(with_lora != before);
  const auto dir = std::filesystem::temp_directory_path() / ("cpdiff_vit_lora_" + std::to_string(::getpid()));
  lora::save_peft(dir, a, "cpdiff-vit-tiny");
  models::vit<vit_tiny, double> other(5);  // the same base (seed 5), another LoRA init
  rng g2{8, 0};
  lora::attach(other, {"query", "value"}, 2, 4.0, g2);
  lora::load_attached(other, lora::load_peft(dir));
  std::filesystem::remove_all(dir);
  const auto back = to_host(cpu{}, other.forward(x.cview()));
  for (std::size_t i = 0; i < back.size(); ++i) CHECK(back[i] == Approx(with_lora[i]).epsilon(1e-6));  // F32 on disk
  CHECK_THROWS_WITH(lora::attach(other, {"qkv"}, 2, 4.0, g2), Catch::Contains("target module 'qkv' matches no Linear"));
  CHECK_THROWS_WITH(lora::attach(other, {"query"}, 2, 4.0, g2), Catch::Contains("has a LoRA already"));
  // rsLoRA: the adapter keeps lora_alpha and the flag (its scaling is alpha / sqrt(r), not alpha / r)
  models::vit<vit_tiny, double> rs(6);
  rng g3{9, 0};
  lora::attach(rs, {"value"}, 2, 4.0, g3, /*rslora=*/true);
  const lora::adapter ra = lora::attached_adapter(rs);
  CHECK(ra.use_rslora);
  CHECK(ra.alpha == 4.0);
  CHECK(ra.scaling() == Approx(4.0 / std::sqrt(2.0)));
}
