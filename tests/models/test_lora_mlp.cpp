// Tests for cpdiff/models/lora_mlp.hpp: gradients (double), the function it computes against a naive
// reference, modes, adapter export / import, base copies and the accuracy helper.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ratio>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/lora_mlp.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {

template <class M>
void randomize_lora(M& m, std::uint64_t seed) {
  using T = typename M::value_type;
  ops::fill_normal(cpu{}, m.fc1().lora_B(), T(0), T(0.3), seed, 1);
  if constexpr (M::adapts_head) ops::fill_normal(cpu{}, m.fc2().lora_B(), T(0), T(0.3), seed, 2);
}

// logits = (relu(x (W1 + s B1 A1)^T + b1)) (W2 + s B2 A2)^T + b2, with plain loops.
template <class M>
std::vector<double> naive_logits(M& m, const std::vector<double>& x, std::size_t n) {
  const std::size_t H = M::hidden;
  auto eff = [](auto& l, std::size_t out, std::size_t in, bool lora) {
    std::vector<double> w(out * in);
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t i = 0; i < in; ++i) {
        double v = l.weight().data()[o * in + i];
        if constexpr (requires { l.lora_A(); })
          if (lora)
            for (std::size_t r = 0; r < M::rank; ++r)
              v += l.scaling() * l.lora_B().data()[o * M::rank + r] * l.lora_A().data()[r * in + i];
        w[o * in + i] = v;
      }
    return w;
  };
  const auto w1 = eff(m.fc1(), H, 784, true), w2 = eff(m.fc2(), 10, H, true);
  std::vector<double> y(n * 10);
  for (std::size_t k = 0; k < n; ++k) {
    std::vector<double> h(H);
    for (std::size_t o = 0; o < H; ++o) {
      double s = m.fc1().bias().data()[o];
      for (std::size_t i = 0; i < 784; ++i) s += w1[o * 784 + i] * x[k * 784 + i];
      h[o] = std::max(s, 0.0);
    }
    for (std::size_t o = 0; o < 10; ++o) {
      double s = m.fc2().bias().data()[o];
      for (std::size_t i = 0; i < H; ++i) s += w2[o * H + i] * h[i];
      y[k * 10 + o] = s;
    }
  }
  return y;
}

tensor<double, cpu> random_input(std::size_t n, std::uint64_t seed) {
  tensor<double, cpu> x({n, 784});
  ops::fill_uniform(cpu{}, x.view(), 0.0, 1.0, seed, 0);
  return x;
}

}  // namespace

static_assert(layer<models::lora_mlp<2, std::ratio<4>, 6, double>>);

TEST_CASE("lora_mlp: gradcheck of the LoRA A/B gradients and the input gradient (finetune mode)",
          "[models][lora_mlp]") {
  models::lora_mlp<2, std::ratio<4>, 6, double> m(11);
  randomize_lora(m, 5);
  auto& ps = m.parameters();
  std::size_t trainable = 0;
  for (const auto& e : ps.entries()) trainable += e.trainable ? 1 : 0;
  CHECK(trainable == 4);  // fc1/fc2 lora_A/lora_B
  testing::gradcheck(m, ps, {3, 784});
}

TEST_CASE("lora_mlp: gradcheck of the base gradients (pretrain mode)", "[models][lora_mlp]") {
  models::lora_mlp<2, std::ratio<4>, 6, double> m(12);
  m.set_mode(models::mlp_mode::pretrain);
  auto& ps = m.parameters();
  CHECK(ps.entry(m.fc1().weight_id()).trainable);
  CHECK(ps.entry(m.fc2().bias_id()).trainable);
  CHECK_FALSE(ps.entry(m.fc1().lora_A_id()).trainable);
  CHECK_FALSE(ps.entry(m.fc2().lora_B_id()).trainable);
  testing::gradcheck(m, ps, {2, 784});
}

TEST_CASE("lora_mlp: Rank > 10 adapts fc1 only; the head is a plain linear", "[models][lora_mlp]") {
  using M = models::lora_mlp<12, std::ratio<32>, 16, double>;
  static_assert(!M::adapts_head);
  M m(13);
  randomize_lora(m, 6);
  testing::gradcheck(m, m.parameters(), {2, 784});
  const lora::adapter a = m.adapter();
  CHECK(a.size() == 1);
  CHECK(a.contains("fc1"));
  CHECK(a.rank == 12);
  m.set_mode(models::mlp_mode::pretrain);
  CHECK(m.parameters().entry(m.fc2().weight_id()).trainable);
  m.set_mode(models::mlp_mode::finetune);
  CHECK_FALSE(m.parameters().entry(m.fc2().weight_id()).trainable);
}

TEST_CASE("lora_mlp: forward matches a naive reference, with and without LoRA", "[models][lora_mlp]") {
  models::lora_mlp<4, std::ratio<16>, 8, double> m(21);
  const auto x = random_input(3, 9);
  const std::vector<double> xv(x.data(), x.data() + x.size());
  auto check = [&] {
    const auto y = m.forward(x.cview());
    REQUIRE(y.shape() == shape{3, 10});
    const auto want = naive_logits(m, xv, 3);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(y.data()[i] == Approx(want[i]).margin(1e-12));
  };
  check();  // B = 0: the base MLP
  randomize_lora(m, 3);
  check();
  CHECK(m.fc1().scaling() == 4.0);  // alpha / r = 16 / 4
}

TEST_CASE("lora_mlp: adapter export and load reproduce the function", "[models][lora_mlp]") {
  models::lora_mlp<4, std::ratio<16>, 8, double> a(31), b(32);
  randomize_lora(a, 7);
  b.copy_base_from(a);
  const auto x = random_input(4, 1);
  const auto ya = a.forward(x.cview());
  const std::vector<double> want(ya.data(), ya.data() + ya.size());
  const lora::adapter ad = a.adapter();
  CHECK(ad.size() == 2);
  CHECK(ad.at("fc1").a_shape() == shape{4, 784});
  CHECK(ad.at("fc1").b_shape() == shape{8, 4});
  CHECK(ad.at("fc2").a_shape() == shape{4, 8});
  CHECK(ad.at("fc2").b_shape() == shape{10, 4});
  CHECK(ad.alpha == 16);
  CHECK(ad.target_modules == std::vector<std::string>{"fc1", "fc2"});
  b.load_adapter(ad);
  const auto yb = b.forward(x.cview());
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(yb.data()[i] == Approx(want[i]).margin(1e-6));
  CHECK(b.adapter().modules.at("fc2").b == ad.modules.at("fc2").b);

  lora::adapter missing = ad;
  missing.modules.erase("fc2");
  REQUIRE_THROWS_AS(b.load_adapter(missing), config_error);
  REQUIRE_THROWS_WITH(b.load_adapter(missing), Catch::Contains("models::lora_mlp::load_adapter"));
  models::lora_mlp<2, std::ratio<8>, 8, double> other_rank(33);
  REQUIRE_THROWS_AS(other_rank.load_adapter(ad), shape_error);
}

TEST_CASE("lora_mlp: reset_lora gives PEFT's init from a seed; bases copy across ranks", "[models][lora_mlp]") {
  models::lora_mlp<4, std::ratio<16>, 8> m(41), m2(42);
  randomize_lora(m, 1);
  m.reset_lora(5);
  for (float v : m.fc1().lora_B().span()) REQUIRE(v == 0.0f);
  for (float v : m.fc2().lora_B().span()) REQUIRE(v == 0.0f);
  const float bound = 1.0f / 28.0f;
  for (float v : m.fc1().lora_A().span()) REQUIRE(std::abs(v) <= bound);
  m2.reset_lora(5);
  CHECK(m.adapter().modules == m2.adapter().modules);
  m2.reset_lora(6);
  CHECK(m.adapter().modules.at("fc1").a != m2.adapter().modules.at("fc1").a);

  // The same base in models of rank 1 and rank 16 computes the same function while B = 0.
  models::lora_mlp<1, std::ratio<8>, 16> r1(50);
  models::lora_mlp<16, std::ratio<32>, 16> r16(51);
  r16.copy_base_from(r1);
  CHECK(r16.base_weights() == r1.base_weights());
  tensor<float, cpu> x({2, 784});
  ops::fill_uniform(cpu{}, x.view(), 0.0f, 1.0f, 3, 0);
  const auto y1 = r1.forward(x.cview());
  const std::vector<float> v1(y1.data(), y1.data() + y1.size());
  const auto y16 = r16.forward(x.cview());
  for (std::size_t i = 0; i < v1.size(); ++i) CHECK(y16.data()[i] == Approx(v1[i]).margin(1e-5));
  REQUIRE_THROWS_AS(r1.load_base_weights(std::vector<float>(10)), shape_error);
}

TEST_CASE("lora_mlp: accuracy counts argmax hits", "[models][lora_mlp]") {
  models::lora_mlp<2, std::ratio<8>, 8> m(61);
  std::vector<float> images(5 * 784);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = float((i * 37) % 101) / 100.0f;
  tensor<float, cpu> x({5, 784});
  std::copy(images.begin(), images.end(), x.data());
  const auto y = m.forward(x.cview());
  std::vector<std::int64_t> right(5), wrong(5);
  for (std::size_t k = 0; k < 5; ++k) {
    const float* row = y.data() + k * 10;
    right[k] = std::max_element(row, row + 10) - row;
    wrong[k] = (right[k] + 1) % 10;
  }
  CHECK(m.accuracy(images, right, 2) == 1.0);  // batches of 2, 2, 1
  CHECK(m.accuracy(images, wrong) == 0.0);
  std::vector<std::int64_t> mixed = right;
  mixed[0] = wrong[0];
  CHECK(m.accuracy(images, mixed) == Approx(0.8));
  REQUIRE_THROWS_AS(m.accuracy(images, std::vector<std::int64_t>(4)), shape_error);
}

TEST_CASE("lora_mlp: wrong input shape is a shape_error naming the model", "[models][lora_mlp]") {
  models::lora_mlp<2, std::ratio<8>, 8> m(71);
  tensor<float, cpu> x({2, 783});
  REQUIRE_THROWS_AS(m.forward(x.cview()), shape_error);
  REQUIRE_THROWS_WITH(m.forward(x.cview()), Catch::Contains("models::lora_mlp::forward") && Catch::Contains("[2, 783]"));
  tensor<float, cpu> v({784});
  REQUIRE_THROWS_AS(m.forward(v.cview()), shape_error);
}
