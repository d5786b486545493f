// Noise schedules against numpy references (tests/fixtures/make_schedule_fixtures.py), and config errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/diffusion/noise_schedule.hpp"
#include "cpdiff/io/npy.hpp"

using namespace cpdiff;
using namespace cpdiff::diffusion;

namespace {

const std::string dir = std::string(CPDIFF_FIXTURES_DIR) + "/diffusion";

std::vector<double> load(const std::string& c, const std::string& name) {
  auto a = io::load_npy<double>(dir + "/" + c + "/" + name + ".npy");
  REQUIRE(a.shape.size() == 1);
  return a.data;
}

// max_t |got - want| / |want| (|want| floored at 1e-300); NaN counts as infinite.
double worst_rel(std::span<const double> got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(got[i] - want[i]) / std::max(std::abs(want[i]), 1e-300);
    if (!(e <= worst)) worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  }
  return worst;
}

noise_schedule make(const nlohmann::json& c) {
  const std::size_t T = c.at("T");
  const auto& a = c.at("args");
  const std::string s = c.at("schedule");
  if (s == "linear") return noise_schedule(T, linear_schedule{a.at("beta_start"), a.at("beta_end")});
  if (s == "quadratic") return noise_schedule(T, quadratic_schedule{a.at("beta_start"), a.at("beta_end")});
  if (s == "sigmoid") return noise_schedule(T, sigmoid_schedule{a.at("beta_start"), a.at("beta_end")});
  if (s == "cosine") return noise_schedule(T, cosine_schedule{a.at("s"), a.at("max_beta")});
  FAIL("unknown schedule " << s);
  throw;
}

}  // namespace

TEST_CASE("noise_schedule: every array matches numpy for every schedule", "[diffusion][schedule]") {
  std::ifstream in(dir + "/index.json");
  REQUIRE(in);
  const auto index = nlohmann::json::parse(in);
  REQUIRE(index.at("cases").size() == 6);
  for (const auto& c : index.at("cases")) {
    const std::string name = c.at("name");
    const noise_schedule s = make(c);
    CHECK(s.name() == c.at("schedule").get<std::string>());
    REQUIRE(s.num_timesteps() == c.at("T").get<std::size_t>());
    const std::pair<const char*, std::span<const double>> arrays[] = {
        {"betas", s.betas()},
        {"alphas", s.alphas()},
        {"alphas_cumprod", s.alphas_cumprod()},
        {"alphas_cumprod_prev", s.alphas_cumprod_prev()},
        {"sqrt_alphas_cumprod", s.sqrt_alphas_cumprod()},
        {"sqrt_one_minus_alphas_cumprod", s.sqrt_one_minus_alphas_cumprod()},
        {"sqrt_recip_alphas_cumprod", s.sqrt_recip_alphas_cumprod()},
        {"sqrt_recipm1_alphas_cumprod", s.sqrt_recipm1_alphas_cumprod()},
        {"posterior_variance", s.posterior_variance()},
        {"posterior_log_variance_clipped", s.posterior_log_variance_clipped()},
        {"posterior_mean_coef1", s.posterior_mean_coef1()},
        {"posterior_mean_coef2", s.posterior_mean_coef2()},
        {"log_variance_fixed_large", s.log_variance_fixed_large()},
    };
    REQUIRE(c.at("arrays").size() == std::size(arrays));
    // Cosine betas are 1 - alpha_bar(t+1) / alpha_bar(t) with beta_0 ~ 4e-5: the subtraction turns one
    // ulp of difference between libm's cos and numpy's into ~1e-12 relative; the rest agree to ~1e-14.
    const double tol = c.at("schedule") == "cosine" ? 2e-11 : 1e-12;
    for (const auto& [array, got] : arrays) {
      INFO(name << "/" << array);
      // posterior_variance[0] is exactly 0 in both (relative error 0/0 floored to 0).
      const double w = worst_rel(got, load(name, array));
      INFO("worst relative error " << w);
      CHECK(w < tol);
    }
  }
}

TEST_CASE("noise_schedule: the paper's linear schedule by default, and known values", "[diffusion][schedule]") {
  const noise_schedule s;
  REQUIRE(s.num_timesteps() == 1000);
  CHECK(s.name() == "linear");
  CHECK(s.betas()[0] == Approx(1e-4).epsilon(1e-14));
  CHECK(s.betas()[999] == Approx(0.02).epsilon(1e-14));
  CHECK(s.betas()[1] - s.betas()[0] == Approx((0.02 - 1e-4) / 999).epsilon(1e-9));
  CHECK(s.alphas_cumprod_prev()[0] == 1.0);
  CHECK(s.posterior_variance()[0] == 0.0);
  // acp_999 for DDPM's linear schedule is about 4.04e-5 (x_T is almost pure noise).
  CHECK(s.alphas_cumprod()[999] == Approx(4.0358e-5).epsilon(1e-3));
  for (std::size_t t = 1; t < 1000; ++t) REQUIRE(s.alphas_cumprod()[t] < s.alphas_cumprod()[t - 1]);

  // Cosine: alpha_bar follows cos^2 closely away from the clipped end.
  const noise_schedule c(1000, cosine_schedule{});
  const double f0 = std::pow(std::cos(0.008 / 1.008 * std::numbers::pi / 2), 2);
  const double f500 = std::pow(std::cos((0.501 + 0.008) / 1.008 * std::numbers::pi / 2), 2);
  CHECK(c.alphas_cumprod()[500] == Approx(f500 / f0).epsilon(1e-10));
  CHECK(c.betas()[999] == 0.999);  // clipped

  // Explicit betas give the same arrays as the policy that made them.
  const noise_schedule q(50, quadratic_schedule{});
  const noise_schedule e(std::vector<double>(q.betas().begin(), q.betas().end()), "mine");
  CHECK(e.name() == "mine");
  for (std::size_t t = 0; t < 50; ++t) CHECK(e.posterior_mean_coef2()[t] == q.posterior_mean_coef2()[t]);
}

TEST_CASE("noise_schedule: bad T or betas are config_errors", "[diffusion][schedule]") {
  CHECK_THROWS_AS(noise_schedule(0), config_error);
  CHECK_THROWS_WITH(noise_schedule(1, linear_schedule{}),
                    Catch::Contains("noise_schedule") && Catch::Contains("at least 2"));
  CHECK_THROWS_AS(noise_schedule(10, linear_schedule{0.0, 0.02}), config_error);  // beta_0 = 0
  CHECK_THROWS_WITH(noise_schedule(10, linear_schedule{1e-4, 1.5}), Catch::Contains("outside (0, 1)"));
  CHECK_THROWS_AS(noise_schedule(10, sigmoid_schedule{-0.1, 0.02}), config_error);
  CHECK_THROWS_AS(noise_schedule(10, cosine_schedule{0.008, 1.0}), config_error);
  CHECK_THROWS_AS(noise_schedule(10, cosine_schedule{-1.0, 0.999}), config_error);
  CHECK_THROWS_AS(noise_schedule(10, quadratic_schedule{-1e-4, 0.02}), config_error);
  CHECK_THROWS_AS(noise_schedule(std::vector<double>{0.1}), config_error);
  CHECK_THROWS_AS(noise_schedule(std::vector<double>{0.1, std::nan("")}), config_error);
  CHECK_THROWS_WITH(noise_schedule(std::vector<double>{0.1, 0.2, 1.0}, "user"),
                    Catch::Contains("user") && Catch::Contains("beta[2]"));
}
