#include <cstdint>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/nn/embedding.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

// Indices in, no dx out: embedding does not fit the cview -> cview layer contract (documented).
static_assert(!layer<nn::embedding<10, 4>>);

namespace {
template <class I>
tensor<I, cpu> indices(shape s, std::initializer_list<I> v) {
  tensor<I, cpu> t(s);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}
template <class L>
const_view<float> cview_of(L& emb) {
  return emb.weight();
}
}  // namespace

TEST_CASE("embedding: gradcheck of the weight, repeated indices", "[nn][embedding]") {
  parameter_store<double, cpu> ps;
  rng g{3};
  nn::embedding<5, 3, double> emb(ps, "emb", g);
  auto idx = indices<std::int64_t>({2, 3}, {4, 0, 4, 2, 4, 0});
  auto y = emb.forward(idx.cview());
  tensor<double, cpu> r(y.shape());
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 8, 0);
  ops::fill(cpu{}, ps.grads(), 0.0);
  emb.backward(r.cview());
  auto w = emb.weight(), dw = ps.grad(emb.weight_id());
  std::vector<testing::grad_target> targets{{"weight", w.data(), std::vector<double>(dw.data(), dw.data() + dw.size())}};
  testing::check_numeric([&] { return testing::dot(emb.forward(idx.cview()), r.cview()); }, targets);
  // rows never looked up (1 and 3) get exactly zero
  for (std::size_t j = 0; j < 3; ++j) CHECK((dw(1, j) == 0.0 && dw(3, j) == 0.0));
}

TEST_CASE("embedding: PyTorch parity (int64 and int32 indices)", "[nn][embedding]") {
  testing::fixture f("embedding");
  parameter_store<double, cpu> ps;
  rng g{1};
  nn::embedding<10, 4, double> emb(ps, "emb", g);
  f.load_into("weight", emb.weight());
  auto raw = io::load_npy<std::int64_t>(testing::fixtures_dir() + "/layers/embedding/x.npy");
  tensor<std::int64_t, cpu> idx(shape::from_range(raw.shape.begin(), raw.shape.end()));
  std::copy(raw.data.begin(), raw.data.end(), idx.data());
  tensor<std::int32_t, cpu> idx32(idx.shape());
  for (std::size_t i = 0; i < idx.size(); ++i) idx32.data()[i] = static_cast<std::int32_t>(idx.data()[i]);
  auto dy = f.tensor("dy");
  SECTION("int64") {
    testing::require_close(emb.forward(idx.cview()), f.tensor("y").cview(), 1e-10, "y");
    ops::fill(cpu{}, ps.grads(), 0.0);
    emb.backward(dy.cview());
    testing::require_close(ps.grad(emb.weight_id()), f.tensor("dweight").cview(), 1e-10, "dweight");
  }
  SECTION("int32") {
    testing::require_close(emb.forward(idx32.cview()), f.tensor("y").cview(), 1e-10, "y");
    ops::fill(cpu{}, ps.grads(), 0.0);
    emb.backward(dy.cview());
    testing::require_close(ps.grad(emb.weight_id()), f.tensor("dweight").cview(), 1e-10, "dweight");
  }
}

TEST_CASE("embedding: init is N(0, 1); frozen weight gets no gradient", "[nn][embedding]") {
  parameter_store<float, cpu> ps;
  rng g{2};
  nn::embedding<1000, 64> emb(ps, "t_emb", g);
  REQUIRE(ps.entry(emb.weight_id()).name == "t_emb.weight");
  REQUIRE(ps.entry(emb.weight_id()).shape == shape{1000, 64});
  const double n = 64000, m = ops::sum(cpu{}, cview_of(emb)) / n;
  const double var = ops::sum_squares(cpu{}, cview_of(emb)) / n - m * m;
  CHECK(std::abs(m) < 0.02);  // 5 standard errors
  CHECK(std::abs(var - 1.0) < 0.03);
  ps.set_trainable(emb.weight_id(), false);
  auto idx = indices<std::int64_t>({1}, {7});
  emb.forward(idx.cview());
  tensor<float, cpu> dy({1, 64});
  ops::fill(cpu{}, dy.view(), 1.0f);
  emb.backward(dy.cview());
  CHECK(ops::sum_squares(cpu{}, const_view<float>(ps.grad(emb.weight_id()))) == 0.0);
}

TEST_CASE("embedding: bad indices and shapes", "[nn][embedding]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::embedding<10, 4> emb(ps, "emb", g);
  auto too_big = indices<std::int64_t>({3}, {1, 10, 2});
  auto negative = indices<std::int32_t>({2}, {-1, 0});
  tensor<std::int64_t, cpu> empty({0});
  REQUIRE_THROWS_WITH(emb.forward(too_big.cview()), Catch::Contains("nn::embedding::forward") &&
                                                        Catch::Contains("index 10") && Catch::Contains("Num = 10"));
  REQUIRE_THROWS_WITH(emb.forward(negative.cview()), Catch::Contains("index -1") && Catch::Contains("position 0"));
  REQUIRE_THROWS_AS(emb.forward(empty.cview()), shape_error);
  auto ok = indices<std::int64_t>({2}, {1, 2});
  emb.forward(ok.cview());
  tensor<float, cpu> dy({2, 5});
  REQUIRE_THROWS_WITH(emb.backward(dy.cview()), Catch::Contains("nn::embedding::backward") && Catch::Contains("[2, 5]"));
}
