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
