#include <catch2/catch.hpp>

#include <cmath>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/optim/ema.hpp"

using namespace cpdiff;

namespace {

// Store: a [4] trainable, frozen [3], b [2] trainable; values v0(i) = i + 1.
struct small_model {
  parameter_store<double, cpu> ps;
  param_id a = ps.add("a", {4});
  param_id frozen = ps.add("frozen", {3}, false);
  param_id b = ps.add("b", {2});
  small_model() {
    for (std::size_t i = 0; i < ps.size(); ++i) ps.values().data()[i] = double(i + 1);
  }
};

}  // namespace

TEST_CASE("ema: with the parameters held at p, shadow = p + d^n (s0 - p)", "[optim][ema]") {
  small_model m;
  optim::ema avg(m.ps, 0.9);
  CHECK(avg.decay() == 0.9);
  // move the trainable parameters to p = -2 (frozen ones keep their values)
  for (param_id id : {m.a, m.b})
    for (std::size_t i = 0; i < m.ps.value(id).size(); ++i) m.ps.value(id).data()[i] = -2.0;
  const int n = 7;
  for (int k = 0; k < n; ++k) avg.update();
  CHECK(avg.num_updates() == n);
  auto st = avg.state();
  REQUIRE(st.buffers.size() == 2);
  CHECK(st.buffers[0].name == "a");
  CHECK(st.buffers[1].name == "b");
  CHECK(st.step == std::size_t(n));
  for (const auto& buf : st.buffers) {
    const auto& e = m.ps.entry(m.ps.find(buf.name));
    for (std::size_t i = 0; i < buf.data.size(); ++i) {
      const double s0 = double(e.offset + i + 1);
      CHECK(buf.data.data()[i] == Approx(-2.0 + std::pow(0.9, n) * (s0 + 2.0)).epsilon(1e-14));
    }
  }
}

TEST_CASE("ema: varying parameters follow the recursion; swap_in / swap_out and copy_to", "[optim][ema]") {
  small_model m;
  optim::ema avg(m.ps, 0.75);
  std::vector<double> ref(m.ps.values().data(), m.ps.values().data() + m.ps.size());
  for (int k = 1; k <= 4; ++k) {
    for (std::size_t i = 0; i < m.ps.size(); ++i)
      if (i < 4 || i >= 7) m.ps.values().data()[i] = std::sin(double(k * 10 + i));
    avg.update();
    for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = 0.75 * ref[i] + 0.25 * m.ps.values().data()[i];
  }
  const std::vector<double> train(m.ps.values().data(), m.ps.values().data() + m.ps.size());

  SECTION("swap_in puts the average in the store, swap_out restores exactly") {
    avg.swap_in();
    CHECK(avg.swapped_in());
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(m.ps.values().data()[i] == Approx(ref[i]).epsilon(1e-14));
    for (std::size_t i = 4; i < 7; ++i) CHECK(m.ps.values().data()[i] == double(i + 1));  // frozen untouched
    CHECK_THROWS_AS(avg.update(), config_error);
    CHECK_THROWS_AS(avg.swap_in(), config_error);
    avg.swap_out();
    for (std::size_t i = 0; i < train.size(); ++i) CHECK(m.ps.values().data()[i] == train[i]);
    CHECK_THROWS_AS(avg.swap_out(), config_error);
  }
  SECTION("copy_to another store of the same layout leaves its frozen entries alone") {
    small_model eval;
    for (std::size_t i = 4; i < 7; ++i) eval.ps.values().data()[i] = 100.0;
    avg.copy_to(eval.ps);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      if (i >= 4 && i < 7) CHECK(eval.ps.values().data()[i] == 100.0);
      else CHECK(eval.ps.values().data()[i] == Approx(ref[i]).epsilon(1e-14));
    }
    for (std::size_t i = 0; i < train.size(); ++i) CHECK(m.ps.values().data()[i] == train[i]);  // source unchanged
    parameter_store<double, cpu> other;
    other.add("x", {3});
    CHECK_THROWS_AS(avg.copy_to(other), shape_error);
  }
  SECTION("reset restarts from the current values") {
    avg.reset();
    CHECK(avg.num_updates() == 0);
    avg.swap_in();
    for (std::size_t i = 0; i < train.size(); ++i) CHECK(m.ps.values().data()[i] == train[i]);
    avg.swap_out();
  }
}

TEST_CASE("ema: warm-up decay min(d, (1 + n) / (10 + n)); parameters added later", "[optim][ema]") {
  parameter_store<float, cpu> ps;
  auto w = ps.add("w", {1});
  optim::ema avg(ps, 0.5, true);
  CHECK(avg.current_decay() == Approx(0.1));
  ps.value(w).data()[0] = 1.f;
  avg.update();  // 0.1 * 0 + 0.9 * 1
  CHECK(avg.current_decay() == Approx(2.0 / 11.0));
  avg.update();  // 2/11 * 0.9 + 9/11 * 1
  for (int k = 0; k < 20; ++k) avg.update();
  CHECK(avg.current_decay() == 0.5);
  auto s = avg.state();
  CHECK(s.buffers[0].data.data()[0] == Approx(1.0f));
  // a new parameter starts its average at its current value
  auto v = ps.add("v", {2});
  ps.value(v).data()[0] = 3.f, ps.value(v).data()[1] = 5.f;
  avg.update();
  avg.swap_in();
  CHECK(ps.value(v).data()[0] == 3.f);
  CHECK(ps.value(v).data()[1] == 5.f);
  avg.swap_out();
}

TEST_CASE("ema: closed form over a large store (OpenMP path)", "[optim][ema]") {
  parameter_store<double, cpu> ps;
  const std::size_t n = 100000;
  ps.add("w", {n});
  optim::ema avg(ps, 0.99);  // shadow starts at 0
  for (std::size_t i = 0; i < n; ++i) ps.values().data()[i] = double(i);
  for (int k = 0; k < 3; ++k) avg.update();
  parameter_store<double, cpu> out;
  out.add("w", {n});
  avg.copy_to(out);
  const double f = 1 - std::pow(0.99, 3);
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(out.values().data()[i] - f * double(i)) / (1 + double(i)));
  CHECK(worst < 1e-14);
}

TEST_CASE("ema: decay outside [0, 1] is a config_error", "[optim][ema]") {
  parameter_store<double, cpu> ps;
  ps.add("w", {1});
  CHECK_THROWS_WITH(optim::ema(ps, 1.5), Catch::Contains("optim::ema") && Catch::Contains("decay"));
  CHECK_THROWS_AS(optim::ema(ps, -0.1), config_error);
  optim::ema avg(ps);
  CHECK(avg.decay() == 0.9999);
  CHECK_THROWS_AS(avg.set_decay(2.0), config_error);
}
