#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/nn/losses.hpp"

using namespace cpdiff;

namespace {

tensor<double, cpu> normal(shape s, std::uint64_t stream, double stddev = 1.0) {
  tensor<double, cpu> t(s);
  ops::fill_normal(cpu{}, t.view(), 0.0, stddev, 77, stream);
  return t;
}

// What a training loop does with the loss: stop, naming the step, if it is not finite.
void guard(double loss, int step) {
  CPDIFF_CHECK(std::isfinite(loss), numeric_error, "train", "step ", step, ": loss is ", loss);
}

}  // namespace

TEST_CASE("mse_loss: gradient vs finite differences", "[nn][loss][mse]") {
  nn::mse_loss<double> mse;
  auto pred = normal({3, 5, 2}, 0), target = normal({3, 5, 2}, 1);
  mse.forward(pred.cview(), target.cview());
  auto d = mse.backward();
  std::vector<testing::grad_target> targets{{"pred", pred.data(), std::vector<double>(d.data(), d.data() + d.size())}};
  testing::check_numeric([&] { return mse.forward(pred.cview(), target.cview()); }, targets);
}

TEST_CASE("cross_entropy: gradient vs finite differences", "[nn][loss][cross_entropy]") {
  nn::cross_entropy<double> ce;
  auto logits = normal({6, 4}, 2, 3.0);
  tensor<std::int64_t, cpu> t({6});
  const std::int64_t labels[] = {0, 3, 1, 1, 2, 3};
  std::copy(std::begin(labels), std::end(labels), t.data());
  ce.forward(logits.cview(), t.cview());
  auto d = ce.backward();
  std::vector<testing::grad_target> targets{
      {"logits", logits.data(), std::vector<double>(d.data(), d.data() + d.size())}};
  testing::check_numeric([&] { return ce.forward(logits.cview(), t.cview()); }, targets);
}

TEST_CASE("losses: values by hand, scale, label types", "[nn][loss]") {
  SECTION("mse") {
    tensor<double, cpu> p({3}), t({3});
    const double pv[] = {1, 2, 3}, tv[] = {0, 0, 1};
    std::copy(pv, pv + 3, p.data());
    std::copy(tv, tv + 3, t.data());
    nn::mse_loss<double> mse;
    CHECK(mse.forward(p.cview(), t.cview()) == Approx((1.0 + 4.0 + 4.0) / 3.0).epsilon(1e-15));
    auto d = mse.backward(0.5);  // 0.5 * 2 (p - t) / 3
    CHECK(d(0) == Approx(1.0 / 3.0).epsilon(1e-15));
    CHECK(d(1) == Approx(2.0 / 3.0).epsilon(1e-15));
    CHECK(d(2) == Approx(2.0 / 3.0).epsilon(1e-15));
  }
  SECTION("cross_entropy: uniform logits give log C, softmax - onehot") {
    tensor<float, cpu> z({2, 4});
    ops::fill(cpu{}, z.view(), 7.0f);
    tensor<std::uint8_t, cpu> t({2});  // Fashion-MNIST's label type
    t.data()[0] = 3;
    t.data()[1] = 0;
    nn::cross_entropy<float, cpu, std::uint8_t> ce;
    CHECK(ce.forward(z.cview(), t.cview()) == Approx(std::log(4.0)).epsilon(1e-6));
    auto d = ce.backward();  // (0.25 - onehot) / 2
    CHECK(d(0, 0) == Approx(0.125f));
    CHECK(d(0, 3) == Approx(-0.375f));
    CHECK(d(1, 0) == Approx(-0.375f));
    CHECK(ce.probabilities()(1, 2) == Approx(0.25f));
    auto d2 = ce.backward(2.0f);
    CHECK(d2(0, 3) == Approx(-0.75f));
  }
  SECTION("cross_entropy: large logits stay finite (log-softmax, not log of softmax)") {
    tensor<float, cpu> z({2, 2});
    const float zv[] = {1000.0f, 0.0f, -1000.0f, 0.0f};
    std::copy(zv, zv + 4, z.data());
    tensor<std::int64_t, cpu> t({2});
    t.data()[0] = 1;  // loss 1000
    t.data()[1] = 1;  // loss ~ 0
    nn::cross_entropy<float> ce;
    const double l = ce.forward(z.cview(), t.cview());
    CHECK(l == Approx(500.0).epsilon(1e-6));
    auto d = ce.backward();
    CHECK(d(0, 0) == Approx(0.5f));
    CHECK(d(0, 1) == Approx(-0.5f));
    CHECK(std::abs(d(1, 1)) < 1e-6f);
  }
}

TEST_CASE("losses: bad input names the op, shapes and index", "[nn][loss]") {
  nn::mse_loss<float> mse;
  tensor<float, cpu> p({2, 3}), t({3, 2}), e({0, 3});
  REQUIRE_THROWS_AS(mse.forward(p.cview(), t.cview()), shape_error);
  REQUIRE_THROWS_WITH(mse.forward(p.cview(), t.cview()), Catch::Contains("nn::mse_loss::forward") &&
                                                            Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(mse.forward(e.cview(), e.cview()), Catch::Contains("nn::mse_loss::forward"));
  REQUIRE_THROWS_WITH(mse.backward(), Catch::Contains("nn::mse_loss::backward") && Catch::Contains("before forward"));

  nn::cross_entropy<float> ce;
  tensor<float, cpu> z({4, 5}), z3({4, 5, 1});
  tensor<std::int64_t, cpu> lab({4}), short_lab({3});
  const std::int64_t bad_hi[] = {0, 4, 5, 1}, bad_lo[] = {0, -1, 2, 3};
  std::copy(bad_hi, bad_hi + 4, lab.data());
  REQUIRE_THROWS_AS(ce.forward(z.cview(), lab.cview()), shape_error);
  REQUIRE_THROWS_WITH(ce.forward(z.cview(), lab.cview()), Catch::Contains("nn::cross_entropy::forward") &&
                                                             Catch::Contains("target[2] = 5") &&
                                                             Catch::Contains("[0, 5)") && Catch::Contains("[4, 5]"));
  std::copy(bad_lo, bad_lo + 4, lab.data());
  REQUIRE_THROWS_WITH(ce.forward(z.cview(), lab.cview()), Catch::Contains("target[1] = -1"));
  REQUIRE_THROWS_WITH(ce.backward(), Catch::Contains("nn::cross_entropy::backward"));
  REQUIRE_THROWS_WITH(ce.forward(z3.cview(), lab.cview()), Catch::Contains("nn::cross_entropy::forward") &&
                                                              Catch::Contains("[4, 5, 1]"));
  REQUIRE_THROWS_WITH(ce.forward(z.cview(), short_lab.cview()), Catch::Contains("nn::cross_entropy::forward") &&
                                                                   Catch::Contains("[3]") && Catch::Contains("[4, 5]"));
}

TEST_CASE("losses: NaN input gives a NaN loss that the training guard catches", "[nn][loss]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  SECTION("mse") {
    auto p = normal({2, 3}, 5), t = normal({2, 3}, 6);
    p.data()[4] = nan;
    nn::mse_loss<double> mse;
    const double l = mse.forward(p.cview(), t.cview());
    CHECK(std::isnan(l));
    REQUIRE_THROWS_AS(guard(l, 17), numeric_error);
    REQUIRE_THROWS_WITH(guard(l, 17), Catch::Contains("step 17"));
    auto d = mse.backward();  // no crash; the NaN stays where it was
    CHECK(std::isnan(d.data()[4]));
    CHECK(std::isfinite(d.data()[0]));
  }
  SECTION("cross_entropy, NaN in the first or a later logit") {
    for (std::size_t at : {std::size_t(0), std::size_t(2)}) {
      auto z = normal({2, 3}, 7);
      z.data()[at] = nan;
      tensor<std::int64_t, cpu> t({2});
      t.data()[0] = 1;
      t.data()[1] = 2;
      nn::cross_entropy<double> ce;
      const double l = ce.forward(z.cview(), t.cview());
      CHECK(std::isnan(l));
      REQUIRE_THROWS_AS(guard(l, 3), numeric_error);
      auto d = ce.backward();
      CHECK(std::isnan(d(0, 1)));
    }
  }
  SECTION("cross_entropy, +Inf logit") {
    auto z = normal({1, 3}, 8);
    z.data()[1] = std::numeric_limits<double>::infinity();
    tensor<std::int64_t, cpu> t({1});
    t.data()[0] = 0;
    nn::cross_entropy<double> ce;
    REQUIRE_THROWS_AS(guard(ce.forward(z.cview(), t.cview()), 4), numeric_error);
  }
}
