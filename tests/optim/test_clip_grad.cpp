#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/optim/clip_grad.hpp"
#include "optim/optim_fixture.hpp"

using namespace cpdiff;

TEST_CASE("clip_grad_norm: matches torch.nn.utils.clip_grad_norm_", "[optim][clip_grad]") {
  for (const char* name : {"clip_scales", "clip_no_change"}) {
    DYNAMIC_SECTION(name) {
      testing::optim_fixture f(name);
      parameter_store<double, cpu> ps;
      f.build_store(ps);
      const auto g = f.array("grads");
      std::copy(g.begin(), g.end(), ps.grads().data());
      const double max_norm = f.args().at("max_norm");
      CHECK(optim::grad_norm(ps) == Approx(f.array("norm")[0]).epsilon(1e-13));
      const double norm = optim::clip_grad_norm(ps, max_norm);
      CHECK(std::abs(norm - f.array("norm")[0]) <= 1e-12 * (1 + norm));
      // frozen gradients (large in the fixture) are neither counted nor scaled
      testing::require_close(ps.grads().span(), f.array("clipped"), 1e-12, "clipped gradients");
      if (norm > max_norm) CHECK(optim::grad_norm(ps) == Approx(max_norm).epsilon(1e-6));
    }
  }
}

TEST_CASE("clip_grad_norm: hand-computed norm in float, and no trainable parameters", "[optim][clip_grad]") {
  parameter_store<float, cpu> ps;
  auto a = ps.add("a", {1});
  auto fz = ps.add("frozen", {1}, false);
  auto b = ps.add("b", {1});
  ps.grad(a).data()[0] = 3.f;
  ps.grad(fz).data()[0] = 100.f;
  ps.grad(b).data()[0] = -4.f;
  SECTION("norm 5 clipped to 1") {
    CHECK(optim::clip_grad_norm(ps, 1.f) == Approx(5.f));
    CHECK(ps.grad(a).data()[0] == Approx(3.f / (5.f + 1e-6f)));
    CHECK(ps.grad(b).data()[0] == Approx(-4.f / (5.f + 1e-6f)));
    CHECK(ps.grad(fz).data()[0] == 100.f);
  }
  SECTION("below the limit nothing changes") {
    CHECK(optim::clip_grad_norm(ps, 10.f) == Approx(5.f));
    CHECK(ps.grad(a).data()[0] == 3.f);
    CHECK(ps.grad(b).data()[0] == -4.f);
  }
  SECTION("nothing trainable: norm 0, gradients untouched") {
    ps.set_trainable(a, false);
    ps.set_trainable(b, false);
    CHECK(optim::clip_grad_norm(ps, 1.f) == 0.f);
    CHECK(ps.grad(a).data()[0] == 3.f);
    CHECK(ps.grad(fz).data()[0] == 100.f);
  }
  SECTION("negative max_norm is a config_error") {
    CHECK_THROWS_WITH(optim::clip_grad_norm(ps, -1.f), Catch::Contains("optim::clip_grad_norm") && Catch::Contains("max_norm"));
  }
}

TEST_CASE("clip_grad_norm: large store (OpenMP path)", "[optim][clip_grad]") {
  parameter_store<double, cpu> ps;
  const std::size_t n = 100000;
  ps.add("w", {n});
  for (std::size_t i = 0; i < n; ++i) ps.grads().data()[i] = (i % 2 ? 2.0 : -2.0);
  const double norm = optim::clip_grad_norm(ps, 1.0);
  CHECK(norm == Approx(2.0 * std::sqrt(double(n))).epsilon(1e-14));
  CHECK(ps.grads().data()[1] == Approx(2.0 / (norm + 1e-6)).epsilon(1e-14));
}

TEST_CASE("grads_finite: only trainable gradients count", "[optim][clip_grad]") {
  parameter_store<double, cpu> ps;
  auto a = ps.add("a", {3});
  auto fz = ps.add("frozen", {2}, false);
  CHECK(optim::grads_finite(ps));
  ps.grad(fz).data()[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK(optim::grads_finite(ps));  // a frozen entry's garbage is ignored
  ps.grad(a).data()[2] = std::numeric_limits<double>::infinity();
  CHECK_FALSE(optim::grads_finite(ps));
  // clipping leaves non-finite gradients alone and returns the non-finite norm
  const double norm = optim::clip_grad_norm(ps, 1.0);
  CHECK(std::isinf(norm));
  CHECK(std::isinf(ps.grad(a).data()[2]));
  ps.grad(a).data()[2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(optim::grads_finite(ps));
  CHECK(std::isnan(optim::clip_grad_norm(ps, 1.0)));
}
