#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/optim/adamw.hpp"
#include "optim/optim_fixture.hpp"

using namespace cpdiff;

namespace {

optim::adamw_config config_of(const nlohmann::json& a) {
  return {.lr = a.at("lr"), .beta1 = a.at("beta1"), .beta2 = a.at("beta2"), .eps = a.at("eps"),
          .weight_decay = a.at("weight_decay")};
}

// Scatters "<param>.<suffix>" state views back into the store's flat layout (frozen slots stay 0).
std::vector<double> flat_state(parameter_store<double, cpu>& ps, optim::adamw<double, cpu>::state_type& s,
                               const std::string& suffix) {
  std::vector<double> out(ps.size(), 0.0);
  for (const auto& b : s.buffers) {
    const auto dot = b.name.rfind('.');
    if (b.name.substr(dot + 1) != suffix) continue;
    const auto& e = ps.entry(ps.find(b.name.substr(0, dot)));
    REQUIRE(b.data.shape() == e.shape);
    std::copy(b.data.data(), b.data.data() + b.data.size(), out.begin() + static_cast<std::ptrdiff_t>(e.offset));
  }
  return out;
}

void set_grads(parameter_store<double, cpu>& ps, std::span<const double> g) {
  REQUIRE(g.size() == ps.size());
  std::copy(g.begin(), g.end(), ps.grads().data());
}

}  // namespace

TEST_CASE("adamw: matches torch.optim.AdamW step by step", "[optim][adamw]") {
  for (const char* name : {"adamw_default", "adamw_custom_lr_changes"}) {
    DYNAMIC_SECTION(name) {
      testing::optim_fixture f(name);
      parameter_store<double, cpu> ps;
      f.build_store(ps);
      const std::size_t n = ps.size();
      const auto grads = f.array("grads"), params = f.array("params"), lrs = f.array("lr"),
                 p0 = f.array("params0");
      optim::adamw opt(ps, config_of(f.args()));
      if (std::string(name) == "adamw_default") {  // the defaults are PyTorch's
        const optim::adamw_config d{};
        CHECK(opt.config().lr == 1e-3);
        CHECK(d.beta1 == 0.9);
        CHECK(d.beta2 == 0.999);
        CHECK(d.eps == 1e-8);
        CHECK(d.weight_decay == 1e-2);
      }
      const auto frozen = ps.entry(ps.find("frozen"));
      for (std::size_t s = 0; s < lrs.size(); ++s) {
        set_grads(ps, testing::row(grads, s, n));
        opt.set_lr(lrs[s]);
        opt.step();
        testing::require_close(ps.values().span(), testing::row(params, s, n), 1e-12, "params after step " + std::to_string(s + 1));
        for (std::size_t i = frozen.offset; i < frozen.offset + frozen.shape.size(); ++i) REQUIRE(ps.values().data()[i] == p0[i]);
      }
      CHECK(opt.step_count() == lrs.size());
      auto st = opt.state();
      CHECK(st.step == lrs.size());
      CHECK(st.buffers.size() == 6);  // a, b, c x {exp_avg, exp_avg_sq}
      testing::require_close(flat_state(ps, st, "exp_avg"), f.array("exp_avg"), 1e-12, "exp_avg");
      testing::require_close(flat_state(ps, st, "exp_avg_sq"), f.array("exp_avg_sq"), 1e-12, "exp_avg_sq");
    }
  }
}

TEST_CASE("adamw: first step is p(1 - lr wd) - lr g / (|g| + eps), also in float and across threads", "[optim][adamw]") {
  // With m = v = 0, the bias-corrected moments after one step are g and g^2.
  SECTION("float, small") {
    parameter_store<float, cpu> ps;
    auto id = ps.add("w", {4});
    const float p0[] = {1.f, -2.f, 0.5f, 3.f}, g[] = {0.1f, -4.f, 0.f, 2e-3f};
    std::copy(p0, p0 + 4, ps.value(id).data());
    std::copy(g, g + 4, ps.grad(id).data());
    optim::adamw opt(ps, {.lr = 0.01f, .weight_decay = 0.1});
    opt.step();
    for (int i = 0; i < 4; ++i) {
      const double want = p0[i] * (1 - 0.01 * 0.1) - 0.01 * g[i] / (std::abs(g[i]) + 1e-8);
      CHECK(ps.value(id).data()[i] == Approx(want).epsilon(1e-6));
    }
  }
  SECTION("double, large enough for OpenMP") {
    parameter_store<double, cpu> ps;
    const std::size_t n = 100000;
    auto id = ps.add("w", {n});
    for (std::size_t i = 0; i < n; ++i) {
      ps.value(id).data()[i] = std::sin(0.001 * double(i));
      ps.grad(id).data()[i] = std::cos(0.37 * double(i));
    }
    optim::adamw opt(ps, {.lr = 0.02, .weight_decay = 0.05});
    opt.step();
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double g = std::cos(0.37 * double(i));
      const double want = std::sin(0.001 * double(i)) * (1 - 0.02 * 0.05) - 0.02 * g / (std::abs(g) + 1e-8);
      worst = std::max(worst, std::abs(ps.value(id).data()[i] - want));
    }
    CHECK(worst < 1e-14);
  }
}

TEST_CASE("adamw: frozen entries are untouched and a store with nothing trainable is a no-op", "[optim][adamw]") {
  parameter_store<double, cpu> ps;
  auto a = ps.add("a", {3});
  auto fz = ps.add("frozen", {2}, false);
  for (std::size_t i = 0; i < ps.size(); ++i) ps.values().data()[i] = 1.0 + double(i), ps.grads().data()[i] = 0.5;
  SECTION("nothing trainable") {
    ps.set_trainable(a, false);
    optim::adamw opt(ps);
    opt.step();
    for (std::size_t i = 0; i < ps.size(); ++i) CHECK(ps.values().data()[i] == 1.0 + double(i));
    CHECK(opt.step_count() == 0);
    CHECK(opt.state().buffers.empty());
  }
  SECTION("flag flipped after construction is honoured") {
    optim::adamw opt(ps);
    opt.step();
    const double a0 = ps.value(a).data()[0];
    CHECK(a0 != 1.0);
    ps.set_trainable(a, false);
    ps.set_trainable(fz, true);
    opt.step();
    CHECK(ps.value(a).data()[0] == a0);
    CHECK(ps.value(fz).data()[0] != 4.0);
  }
  SECTION("empty store") {
    parameter_store<double, cpu> empty;
    optim::adamw opt(empty);
    opt.step();
    CHECK(opt.step_count() == 0);
  }
}

TEST_CASE("adamw: restoring state() continues the same trajectory", "[optim][adamw]") {
  testing::optim_fixture f("adamw_default");
  parameter_store<double, cpu> ps1, ps2;
  f.build_store(ps1);
  const auto grads = f.array("grads"), params = f.array("params");
  const std::size_t n = ps1.size();
  optim::adamw opt1(ps1);
  for (std::size_t s = 0; s < 3; ++s) set_grads(ps1, testing::row(grads, s, n)), opt1.step();
  // a "checkpoint": values, then optimiser state by name
  f.build_store(ps2);
  std::copy(ps1.values().data(), ps1.values().data() + n, ps2.values().data());
  optim::adamw opt2(ps2);
  auto src = opt1.state();
  auto dst = opt2.state();
  REQUIRE(src.buffers.size() == dst.buffers.size());
  for (std::size_t i = 0; i < src.buffers.size(); ++i) {
    REQUIRE(src.buffers[i].name == dst.buffers[i].name);
    std::copy(src.buffers[i].data.data(), src.buffers[i].data.data() + src.buffers[i].data.size(),
              dst.buffers[i].data.data());
  }
  dst.step = src.step;
  CHECK(opt2.step_count() == 3);
  for (std::size_t s = 3; s < 5; ++s) set_grads(ps2, testing::row(grads, s, n)), opt2.step();
  testing::require_close(ps2.values().span(), testing::row(params, 4, n), 1e-12, "resumed params after step 5");
}

TEST_CASE("adamw: bad configuration is a config_error naming the field", "[optim][adamw]") {
  parameter_store<float, cpu> ps;
  ps.add("w", {2});
  using C = optim::adamw_config;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(optim::adamw(ps, C{.lr = -1e-3}), Catch::Contains("optim::adamw") && Catch::Contains("learning rate"));
  CHECK_THROWS_AS(optim::adamw(ps, C{.lr = nan}), config_error);
  CHECK_THROWS_WITH(optim::adamw(ps, C{.beta1 = 1.0}), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(optim::adamw(ps, C{.beta1 = -0.1}), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(optim::adamw(ps, C{.beta2 = 1.0}), Catch::Contains("beta2"));
  CHECK_THROWS_WITH(optim::adamw(ps, C{.eps = -1}), Catch::Contains("eps"));
  CHECK_THROWS_WITH(optim::adamw(ps, C{.weight_decay = -0.1}), Catch::Contains("weight_decay"));
  CHECK_NOTHROW(optim::adamw(ps, C{.lr = 0, .beta1 = 0, .beta2 = 0, .eps = 0, .weight_decay = 0}));
  optim::adamw opt(ps);
  CHECK_THROWS_AS(opt.set_lr(-1), config_error);
  CHECK(opt.lr() == 1e-3);
  opt.set_lr(0.5);
  CHECK(opt.lr() == 0.5);
}
