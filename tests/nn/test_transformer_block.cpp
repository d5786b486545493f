#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/transformer_block.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("transformer_block: gradcheck of the input and every parameter", "[nn][attention]") {
  parameter_store<double, cpu> ps;
  rng g{9};
  nn::transformer_block<8, 2, 12, double> block(ps, "block", g, 1e-5);
  testing::gradcheck(block, ps, {2, 3, 8});
}

TEST_CASE("transformer_block: Hugging Face ViTLayer's parameter names; errors name the member", "[nn][attention]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::transformer_block<4, 2, 8> block(ps, "vit.encoder.layer.3", g);
  std::vector<std::string> names;
  for (const auto& e : ps.entries()) names.push_back(e.name);
  const std::vector<std::string> want{
      "vit.encoder.layer.3.layernorm_before.weight",           "vit.encoder.layer.3.layernorm_before.bias",
      "vit.encoder.layer.3.attention.attention.query.weight", "vit.encoder.layer.3.attention.attention.query.bias",
      "vit.encoder.layer.3.attention.attention.key.weight",   "vit.encoder.layer.3.attention.attention.key.bias",
      "vit.encoder.layer.3.attention.attention.value.weight", "vit.encoder.layer.3.attention.attention.value.bias",
      "vit.encoder.layer.3.attention.output.dense.weight",    "vit.encoder.layer.3.attention.output.dense.bias",
      "vit.encoder.layer.3.layernorm_after.weight",            "vit.encoder.layer.3.layernorm_after.bias",
      "vit.encoder.layer.3.intermediate.dense.weight",         "vit.encoder.layer.3.intermediate.dense.bias",
      "vit.encoder.layer.3.output.dense.weight",               "vit.encoder.layer.3.output.dense.bias"};
  CHECK(names == want);
  tensor<float, cpu> ok({1, 2, 4}), flat({2, 4}), bad_dy({1, 3, 4});
  CHECK_THROWS_WITH(block.backward(ok.cview()), Catch::Contains("called before forward"));
  CHECK_THROWS_WITH(block.forward(flat.cview()), Catch::Contains("nn::transformer_block::forward: input: expected [N, L, 4], got [2, 4]"));
  block.forward(ok.cview());
  CHECK_THROWS_WITH(block.backward(bad_dy.cview()), Catch::Contains("dy: expected [1, 2, 4], got [1, 3, 4]"));
}
