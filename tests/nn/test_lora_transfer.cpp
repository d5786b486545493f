#include <catch2/catch.hpp>

#include <ratio>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/lora_transfer.hpp"
#include "cpdiff/nn/lora_linear.hpp"

using namespace cpdiff;

namespace {
using q_layer = nn::lora_linear<6, 6, 2, std::ratio<8>>;
using ffn_layer = nn::lora_linear<6, 10, 2, std::ratio<8>, float, cpu, false>;

template <class L>
void randomize(L& l, std::uint64_t seed) {
  ops::fill_normal(cpu{}, l.lora_A(), 0.0f, 1.0f, seed, 0);
  ops::fill_normal(cpu{}, l.lora_B(), 0.0f, 1.0f, seed, 1);
}

std::vector<float> values(tensor_view<float> v) { return {v.data(), v.data() + v.size()}; }
}  // namespace

TEST_CASE("adapter: extract takes the layers' names, shapes, rank, alpha and values", "[lora][adapter]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  q_layer q(ps, "encoder.layer.0.attention.self.query", g, 0.1f);
  q_layer v(ps, "encoder.layer.0.attention.self.value", g);
  ffn_layer f(ps, "encoder.layer.0.output.dense", g);
  randomize(q, 1), randomize(v, 2), randomize(f, 3);

  lora::adapter a;
  lora::extract(a, q, v, f);
  CHECK(a.rank == 2);
  CHECK(a.alpha == 8.0);
  CHECK_FALSE(a.use_rslora);
  CHECK(a.dropout == Approx(0.1));
  CHECK(a.scaling() == 4.0);
  CHECK(a.size() == 3);
  CHECK(a.target_modules == std::vector<std::string>{"dense", "query", "value"});
  CHECK(a.parameter_count() == 2 * 6 + 6 * 2 + 2 * 6 + 6 * 2 + 2 * 6 + 10 * 2);
  const auto& w = a.at("encoder.layer.0.output.dense");
  CHECK(w.a_shape() == shape{2, 6});
  CHECK(w.b_shape() == shape{10, 2});
  CHECK(w.a == values(f.lora_A()));
  CHECK(w.b == values(f.lora_B()));
  CHECK(a.at("encoder.layer.0.attention.self.query").a == values(q.lora_A()));
  REQUIRE_THROWS_AS(a.at("encoder.layer.1.attention.self.query"), config_error);
  REQUIRE_THROWS_WITH(a.at("encoder.layer.1.attention.self.query"),
                      Catch::Contains("encoder.layer.1.attention.self.query") && Catch::Contains("3 module(s)"));
}

TEST_CASE("adapter: load_into copies A and B, and the loaded layer computes the same", "[lora][adapter]") {
  parameter_store<float, cpu> ps1, ps2;
  rng g1{1}, g2{2};
  q_layer src(ps1, "m.q", g1);
  ffn_layer src_f(ps1, "m.f", g1);
  randomize(src, 5), randomize(src_f, 6);
  lora::adapter a;
  lora::extract(a, src, src_f);

  q_layer dst(ps2, "m.q", g2);
  ffn_layer dst_f(ps2, "m.f", g2);
  lora::load_all(a, dst, dst_f);
  CHECK(values(dst.lora_A()) == values(src.lora_A()));
  CHECK(values(dst.lora_B()) == values(src.lora_B()));
  CHECK(values(dst_f.lora_B()) == values(src_f.lora_B()));

  // Same base weights too -> same outputs.
  std::copy(src.weight().data(), src.weight().data() + src.weight().size(), dst.weight().data());
  std::copy(src.bias().data(), src.bias().data() + src.bias().size(), dst.bias().data());
  tensor<float, cpu> x({3, 6});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 9, 0);
  const auto y1 = ops::to_host(cpu{}, src.forward(x.cview()));
  CHECK(ops::to_host(cpu{}, dst.forward(x.cview())) == y1);

  // Under another module name.
  q_layer other(ps2, "renamed", g2);
  lora::load_into(other, a, "m.q");
  CHECK(values(other.lora_A()) == values(src.lora_A()));
  REQUIRE_THROWS_AS(lora::load_into(other, a), config_error);  // no module "renamed"
}

TEST_CASE("adapter: mismatches are clear errors", "[lora][adapter]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  q_layer q(ps, "m.q", g);
  lora::adapter a;
  lora::extract(a, q);

  SECTION("wrong rank: shape_error naming the module, expected and got shapes") {
    nn::lora_linear<6, 6, 3, std::ratio<8>> r3(ps, "r3", g);
    REQUIRE_THROWS_AS(lora::load_into(r3, a, "m.q"), shape_error);
    REQUIRE_THROWS_WITH(lora::load_into(r3, a, "m.q"), Catch::Contains("'m.q'") && Catch::Contains("[3, 6]") &&
                                                           Catch::Contains("[2, 6]") && Catch::Contains("rank differs"));
  }
  SECTION("wrong in_features / out_features") {
    nn::lora_linear<5, 6, 2, std::ratio<8>> in5(ps, "in5", g);
    REQUIRE_THROWS_WITH(lora::load_into(in5, a, "m.q"), Catch::Contains("[2, 5]") && Catch::Contains("[2, 6]"));
    nn::lora_linear<6, 7, 2, std::ratio<8>> out7(ps, "out7", g);
    REQUIRE_THROWS_WITH(lora::load_into(out7, a, "m.q"), Catch::Contains("[7, 2]") && Catch::Contains("[6, 2]"));
  }
  SECTION("different scaling: config_error") {
    nn::lora_linear<6, 6, 2, std::ratio<16>> a16(ps, "a16", g);
    REQUIRE_THROWS_AS(lora::load_into(a16, a, "m.q"), config_error);
    nn::lora_linear<6, 6, 2, std::ratio<8>, float, cpu, true, true> rs(ps, "rs", g);
    REQUIRE_THROWS_AS(lora::load_into(rs, a, "m.q"), config_error);
  }
  SECTION("merged layer: config_error") {
    q.merge();
    REQUIRE_THROWS_WITH(lora::load_into(q, a, "m.q"), Catch::Contains("unmerge"));
  }
  SECTION("extracting layers of another rank or alpha into one adapter") {
    nn::lora_linear<6, 6, 1, std::ratio<8>> r1(ps, "r1", g);
    REQUIRE_THROWS_AS(lora::extract(a, r1), config_error);
    nn::lora_linear<6, 6, 2, std::ratio<4>> a4(ps, "a4", g);
    REQUIRE_THROWS_AS(lora::extract(a, a4), config_error);
  }
  SECTION("adapter::add checks rank and sizes") {
    REQUIRE_THROWS_AS(a.add("x", lora::lora_weights{3, 6, 6, std::vector<float>(18), std::vector<float>(18)}), shape_error);
    REQUIRE_THROWS_WITH(a.add("x", lora::lora_weights{2, 6, 6, std::vector<float>(11), std::vector<float>(12)}),
                        Catch::Contains("'x'") && Catch::Contains("lora_A") && Catch::Contains("[2, 6]"));
    lora::adapter empty;
    REQUIRE_THROWS_AS(empty.add("x", lora::lora_weights{2, 6, 6, std::vector<float>(12), std::vector<float>(12)}),
                      config_error);
  }
}

TEST_CASE("adapter: double layers round-trip through float", "[lora][adapter]") {
  parameter_store<double, cpu> ps;
  rng g{4};
  nn::lora_linear<4, 3, 1, std::ratio<1, 2>, double, cpu, true, true> l(ps, "d", g);
  ops::fill_normal(cpu{}, l.lora_B(), 0.0, 1.0, 1, 1);
  lora::adapter a;
  lora::extract(a, l);
  CHECK(a.alpha == 0.5);
  CHECK(a.use_rslora);
  CHECK(a.scaling() == 0.5);
  const std::vector<double> b(l.lora_B().data(), l.lora_B().data() + 3);
  ops::fill(cpu{}, l.lora_B(), 0.0);
  lora::load_into(l, a);
  for (std::size_t i = 0; i < 3; ++i) CHECK(l.lora_B().data()[i] == double(float(b[i])));
}
