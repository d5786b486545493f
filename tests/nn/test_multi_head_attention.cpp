#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/multi_head_attention.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

TEST_CASE("multi_head_attention: gradcheck of the input and all four projections", "[nn][attention]") {
  parameter_store<double, cpu> ps;
  rng g{5};
  SECTION("two heads") {
    nn::multi_head_attention<8, 2, double> mha(ps, "attn", g);
    testing::gradcheck(mha, ps, {2, 4, 8});
  }
  SECTION("four heads, one token") {
    nn::multi_head_attention<8, 4, double> mha(ps, "attn", g);
    testing::gradcheck(mha, ps, {3, 1, 8});
  }
}

TEST_CASE("multi_head_attention: Hugging Face's parameter names; rows of attention weights sum to one",
          "[nn][attention]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::multi_head_attention<4, 2> mha(ps, "vit.encoder.layer.0.attention", g);
  std::vector<std::string> names;
  for (const auto& e : ps.entries()) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"vit.encoder.layer.0.attention.attention.query.weight",
                                          "vit.encoder.layer.0.attention.attention.query.bias",
                                          "vit.encoder.layer.0.attention.attention.key.weight",
                                          "vit.encoder.layer.0.attention.attention.key.bias",
                                          "vit.encoder.layer.0.attention.attention.value.weight",
                                          "vit.encoder.layer.0.attention.attention.value.bias",
                                          "vit.encoder.layer.0.attention.output.dense.weight",
                                          "vit.encoder.layer.0.attention.output.dense.bias"});
  tensor<float, cpu> x({2, 3, 4});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 30.0f, 7, 0);  // large scores: the softmax must not overflow
  mha.forward(x.cview());
  const auto p = mha.attention_probs();
  REQUIRE(p.shape() == shape{2, 2, 3, 3});
  for (std::size_t r = 0; r < 12; ++r) {
    double s = 0;
    for (std::size_t j = 0; j < 3; ++j) {
      const float v = p.data()[r * 3 + j];
      CHECK(std::isfinite(v));
      s += v;
    }
    CHECK(s == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("multi_head_attention: bad input names the layer and the shape; backward before forward says so",
          "[nn][attention]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::multi_head_attention<6, 3> mha(ps, "attn", g);
  tensor<float, cpu> flat({2, 6}), wide({2, 3, 7}), empty({0, 3, 6}), ok({2, 3, 6});
  CHECK_THROWS_WITH(mha.backward(ok.cview()), Catch::Contains("called before forward"));
  CHECK_THROWS_WITH(mha.forward(flat.cview()), Catch::Contains("nn::multi_head_attention::forward") &&
                                                   Catch::Contains("expected [N, L, 6], got [2, 6]"));
  CHECK_THROWS_AS(mha.forward(wide.cview()), shape_error);
  CHECK_THROWS_AS(mha.forward(empty.cview()), shape_error);
  mha.forward(ok.cview());
  CHECK_THROWS_WITH(mha.backward(flat.cview()), Catch::Contains("output.dense: nn::linear::backward"));
}
