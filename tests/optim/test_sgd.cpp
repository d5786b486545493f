#include <catch2/catch.hpp>

#include <cmath>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/optim/sgd.hpp"
#include "optim/optim_fixture.hpp"

using namespace cpdiff;

namespace {

optim::sgd_config config_of(const nlohmann::json& a) {
  return {.lr = a.at("lr"), .momentum = a.at("momentum"), .dampening = a.at("dampening"),
          .weight_decay = a.at("weight_decay"), .nesterov = a.at("nesterov")};
}

}  // namespace

TEST_CASE("sgd: matches torch.optim.SGD step by step", "[optim][sgd]") {
  for (const char* name : {"sgd_plain", "sgd_momentum", "sgd_nesterov", "sgd_dampening"}) {
    DYNAMIC_SECTION(name) {
      testing::optim_fixture f(name);
      parameter_store<double, cpu> ps;
      f.build_store(ps);
      const std::size_t n = ps.size();
      const auto grads = f.array("grads"), params = f.array("params"), lrs = f.array("lr"), p0 = f.array("params0");
      optim::sgd opt(ps, config_of(f.args()));
      const auto frozen = ps.entry(ps.find("frozen"));
      for (std::size_t s = 0; s < lrs.size(); ++s) {
        const auto g = testing::row(grads, s, n);
        std::copy(g.begin(), g.end(), ps.grads().data());
        opt.set_lr(lrs[s]);
        opt.step();
        testing::require_close(ps.values().span(), testing::row(params, s, n), 1e-12,
                               "params after step " + std::to_string(s + 1));
        for (std::size_t i = frozen.offset; i < frozen.offset + frozen.shape.size(); ++i)
          REQUIRE(ps.values().data()[i] == p0[i]);
      }
      auto st = opt.state();
      CHECK(st.step == lrs.size());
      if (f.args().at("momentum").get<double>() == 0) {
        CHECK(st.buffers.empty());
      } else {
        REQUIRE(st.buffers.size() == 3);
        std::vector<double> buf(n, 0.0);
        for (const auto& b : st.buffers) {
          const std::string param = b.name.substr(0, b.name.size() - std::string(".momentum_buffer").size());
          REQUIRE(b.name == param + ".momentum_buffer");
          const auto& e = ps.entry(ps.find(param));
          std::copy(b.data.data(), b.data.data() + b.data.size(), buf.begin() + static_cast<std::ptrdiff_t>(e.offset));
        }
        testing::require_close(buf, f.array("momentum_buffer"), 1e-12, "momentum_buffer");
      }
    }
  }
}

TEST_CASE("sgd: hand-computed momentum steps, in float", "[optim][sgd]") {
  // p = 1, g = 1 each step, lr 0.1, momentum 0.5: buf = 1, 1.5, 1.75; p = 0.9, 0.75, 0.575
  parameter_store<float, cpu> ps;
  auto id = ps.add("w", {1});
  ps.value(id).data()[0] = 1.f;
  optim::sgd opt(ps, {.lr = 0.1, .momentum = 0.5});
  const float want[] = {0.9f, 0.75f, 0.575f};
  for (float w : want) {
    ps.grad(id).data()[0] = 1.f;
    opt.step();
    CHECK(ps.value(id).data()[0] == Approx(w).epsilon(1e-6));
  }
  // Nesterov, same numbers: d = g + 0.5 buf -> 1.5, 1.75, 1.875 ; p = 0.85, 0.675, 0.4875
  parameter_store<float, cpu> ps2;
  auto id2 = ps2.add("w", {1});
  ps2.value(id2).data()[0] = 1.f;
  optim::sgd nes(ps2, {.lr = 0.1, .momentum = 0.5, .nesterov = true});
  for (float w : {0.85f, 0.675f, 0.4875f}) {
    ps2.grad(id2).data()[0] = 1.f;
    nes.step();
    CHECK(ps2.value(id2).data()[0] == Approx(w).epsilon(1e-6));
  }
}

TEST_CASE("sgd: large store (OpenMP path) and no-op without trainable parameters", "[optim][sgd]") {
  SECTION("plain step over 100000 elements") {
    parameter_store<double, cpu> ps;
    const std::size_t n = 100000;
    auto id = ps.add("w", {n});
    for (std::size_t i = 0; i < n; ++i) ps.value(id).data()[i] = double(i), ps.grad(id).data()[i] = 2.0 * double(i);
    optim::sgd opt(ps, {.lr = 0.25, .weight_decay = 0.5});
    opt.step();  // p - 0.25 (2p + 0.5 p) = 0.375 p
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i) ok = ok && ps.value(id).data()[i] == 0.375 * double(i);
    CHECK(ok);
  }
  SECTION("nothing trainable") {
    parameter_store<double, cpu> ps;
    ps.add("frozen", {3}, false);
    for (std::size_t i = 0; i < 3; ++i) ps.values().data()[i] = 1, ps.grads().data()[i] = 1;
    optim::sgd opt(ps, {.lr = 0.1, .momentum = 0.9});
    opt.step();
    for (std::size_t i = 0; i < 3; ++i) CHECK(ps.values().data()[i] == 1);
    CHECK(opt.step_count() == 0);
  }
}

TEST_CASE("sgd: bad configuration is a config_error", "[optim][sgd]") {
  parameter_store<double, cpu> ps;
  ps.add("w", {2});
  using C = optim::sgd_config;
  CHECK_THROWS_WITH(optim::sgd(ps, C{.lr = -0.1}), Catch::Contains("optim::sgd") && Catch::Contains("learning rate"));
  CHECK_THROWS_WITH(optim::sgd(ps, C{.momentum = -0.9}), Catch::Contains("momentum"));
  CHECK_THROWS_WITH(optim::sgd(ps, C{.dampening = 1.5}), Catch::Contains("dampening"));
  CHECK_THROWS_WITH(optim::sgd(ps, C{.weight_decay = -1}), Catch::Contains("weight_decay"));
  CHECK_THROWS_WITH(optim::sgd(ps, C{.nesterov = true}), Catch::Contains("nesterov"));
  CHECK_THROWS_WITH(optim::sgd(ps, C{.momentum = 0.9, .dampening = 0.1, .nesterov = true}), Catch::Contains("nesterov"));
  optim::sgd opt(ps, {.lr = 0.1});
  CHECK_THROWS_AS(opt.set_lr(-1), config_error);
}
