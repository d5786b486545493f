// DDIM sampler: timestep sub-sequences, one step against the formula, agreement with DDPM where the two
// coincide, an ORACLE denoiser (1-D Gaussian data, closed-form optimal eps), determinism, and the
// classifier-free guidance hook.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/diffusion/ddim_sampler.hpp"
#include "cpdiff/diffusion/ddpm_sampler.hpp"
#include "cpdiff/io/npy.hpp"

using namespace cpdiff;
using namespace cpdiff::diffusion;

namespace {

std::vector<double> fixture(const std::string& name) {
  return io::load_npy<double>(std::string(CPDIFF_FIXTURES_DIR) + "/diffusion/linear_T1000/" + name + ".npy").data;
}

// E[eps | x_t] for x0 ~ N(mu, s^2): (x_t - sqrt(acp) mu) sqrt(1 - acp) / (acp s^2 + 1 - acp), in double.
template <class T>
struct gaussian_oracle {
  gaussian_oracle(double mu_, double s_) : mu(mu_), s(s_) {}
  double mu, s;
  std::vector<double> acp = fixture("alphas_cumprod");
  tensor<T, cpu> out;
  std::vector<std::int64_t> seen;  // the timesteps it was called with
  bool same_t = true;              // every sample of a call got the same timestep

  const_view<T> operator()(const_view<T> x, const_view<std::int64_t> t) {
    out.resize(x.shape());
    seen.push_back(t.data()[0]);
    const std::size_t N = x.dim(0), D = x.size() / N;
    for (std::size_t n = 0; n < N; ++n) {
      same_t = same_t && t.data()[n] == t.data()[0];
      const double a = acp[static_cast<std::size_t>(t.data()[n])];
      for (std::size_t j = 0; j < D; ++j) {
        const double xt = x.data()[n * D + j];
        out.data()[n * D + j] = static_cast<T>((xt - std::sqrt(a) * mu) * std::sqrt(1 - a) / (a * s * s + 1 - a));
      }
    }
    return out.cview();
  }
};

struct moments {
  double mean, std;
};
template <class V>
moments stats(const V& x) {
  double s = 0, q = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x.data()[i];
  const double m = s / static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) q += (x.data()[i] - m) * (x.data()[i] - m);
  return {m, std::sqrt(q / static_cast<double>(x.size() - 1))};
}

// The exact law of DDIM's output for Gaussian data without clipping. With d = x - sqrt(acp) mu, a step is
// d' = k d + sigma z, k = (sqrt(acp acp') s^2 + sqrt(1 - acp' - sigma^2) sqrt(1 - acp)) / (acp s^2 + 1 - acp).
// For eta = 0 each k is below the ratio of the true marginal stds (Cauchy-Schwarz), so a coarse sequence
// under-disperses: the discretisation error of DDIM itself, which these tests state rather than hide.
moments ddim_gaussian_law(std::span<const std::size_t> tau, double mu, double s, double eta) {
  const auto acp = fixture("alphas_cumprod");
  double m = -std::sqrt(acp[tau.back()]) * mu, V = 1;
  for (std::size_t i = tau.size(); i-- > 0;) {
    const double a = acp[tau[i]], ap = i ? acp[tau[i - 1]] : 1.0;
    const double sig = eta * std::sqrt((1 - ap) / (1 - a)) * std::sqrt(1 - a / ap);
    const double k = (std::sqrt(ap * a) * s * s + std::sqrt(1 - ap - sig * sig) * std::sqrt(1 - a)) / (a * s * s + 1 - a);
    m *= k;
    V = k * k * V + sig * sig;
  }
  return {mu + m, std::sqrt(V)};
}

}  // namespace

TEST_CASE("ddim_timesteps: the three spacings", "[diffusion][ddim]") {
  auto leading50 = ddim_timesteps(1000, 50, ddim_spacing::leading);
  REQUIRE(leading50.size() == 50);
  for (std::size_t i = 0; i < 50; ++i) CHECK(leading50[i] == 20 * i);
  const auto leading60 = ddim_timesteps(1000, 60, ddim_spacing::leading);
  CHECK(leading60.front() == 0);
  CHECK(leading60[1] == 16);
  CHECK(leading60.back() == 944);
  const auto trailing50 = ddim_timesteps(1000, 50, ddim_spacing::trailing);
  for (std::size_t i = 0; i < 50; ++i) CHECK(trailing50[i] == 20 * i + 19);
  const auto trailing60 = ddim_timesteps(1000, 60, ddim_spacing::trailing);
  CHECK(trailing60.front() == 15);
  CHECK(trailing60.back() == 999);
  const auto lin = ddim_timesteps(1000, 60, ddim_spacing::linspace);
  CHECK(lin.front() == 0);
  CHECK(lin[1] == 17);  // round(999 / 59 = 16.93)
  CHECK(lin.back() == 999);
  for (auto sp : {ddim_spacing::leading, ddim_spacing::trailing, ddim_spacing::linspace}) {
    for (std::size_t S : {1, 7, 60, 333, 999, 1000}) {
      const auto tau = ddim_timesteps(1000, S, sp);
      REQUIRE(tau.size() == S);
      for (std::size_t i = 1; i < S; ++i) REQUIRE(tau[i] > tau[i - 1]);
      REQUIRE(tau.back() < 1000);
    }
    const auto all = ddim_timesteps(1000, 1000, sp);
    CHECK(all.front() == 0);
    CHECK(all.back() == 999);
  }
  CHECK_THROWS_AS(ddim_timesteps(1000, 0, ddim_spacing::leading), config_error);
  CHECK_THROWS_WITH(ddim_timesteps(10, 11, ddim_spacing::trailing), Catch::Contains("ddim_timesteps"));
}

TEST_CASE("ddim_sampler: one step against the DDIM formula", "[diffusion][ddim]") {
  const auto acp = fixture("alphas_cumprod");
  const std::vector<double> x_in{-1.0, -0.3, 0.0, 0.2, 0.9, 1.0}, e_in{0.5, -2.0, 0.1, 1.5, -0.7, 3.0};
  tensor<double, cpu> eps({2, 3});
  std::copy(e_in.begin(), e_in.end(), eps.data());
  auto model = [&](const_view<double>, const_view<std::int64_t>) { return eps.cview(); };
  for (const double eta : {0.0, 0.5, 1.0})
    for (const bool clip : {false, true})
      for (const std::size_t i : {std::size_t(0), std::size_t(1), std::size_t(25), std::size_t(49)}) {
        INFO("eta " << eta << ", clip " << clip << ", step " << i);
        ddim_sampler<double> s(noise_schedule(1000), {.steps = 50, .eta = eta, .clip_x0 = clip, .clamp_x = clip});
        tensor<double, cpu> x({2, 3});
        std::copy(x_in.begin(), x_in.end(), x.data());
        rng g{31, 4};
        s.step(model, x.view(), i, g);
        CHECK(g.next_stream == 5);
        const double a = acp[20 * i], ap = i == 0 ? 1.0 : acp[20 * (i - 1)];
        const double sigma = eta * std::sqrt((1 - ap) / (1 - a) * (1 - a / ap));
        for (std::size_t k = 0; k < 6; ++k) {
          double x0 = (x_in[k] - std::sqrt(1 - a) * e_in[k]) / std::sqrt(a), e = e_in[k];
          if (clip && std::abs(x0) > 1) {
            x0 = std::clamp(x0, -1.0, 1.0);
            e = (x_in[k] - std::sqrt(a) * x0) / std::sqrt(1 - a);
          }
          double want = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sigma * sigma) * e + sigma * philox_normal(31, 4, k);
          if (clip) want = std::clamp(want, -1.0, 1.0);
          CHECK(x.data()[k] == Approx(want).epsilon(1e-11).margin(1e-12));
        }
      }
}

TEST_CASE("ddim_sampler: all T steps with eta = 1 is DDPM with the posterior variance", "[diffusion][ddim]") {
  // Same noise streams, algebraically the same update: the two samplers must agree to rounding.
  gaussian_oracle<double> oracle(0.1, 0.4);
  ddim_sampler<double> ddim(noise_schedule(1000), {.steps = 1000, .eta = 1.0, .clip_x0 = false});
  ddpm_sampler<double> ddpm(noise_schedule(1000),
                            {.variance = reverse_variance::fixed_small, .clip_x0 = false, .clamp_x = false});
  rng g1{8}, g2{8};
  const auto a = ddim.sample(oracle, {50, 2}, g1);
  const std::vector<double> first(a.data(), a.data() + a.size());
  const auto b = ddpm.sample(oracle, {50, 2}, g2);
  CHECK(g1.next_stream == g2.next_stream);
  double worst = 0;
  for (std::size_t i = 0; i < first.size(); ++i) worst = std::max(worst, std::abs(first[i] - b.data()[i]));
  CHECK(worst < 1e-9);
}

TEST_CASE("ddim_sampler: with the oracle denoiser, 50 steps reproduce the data", "[diffusion][ddim]") {
  const std::size_t N = 4000;
  SECTION("N(0.2, 0.5^2), eta = 0 and eta = 1, leading and trailing spacing") {
    for (const double eta : {0.0, 1.0})
      for (const auto sp : {ddim_spacing::leading, ddim_spacing::trailing}) {
        gaussian_oracle<float> oracle(0.2, 0.5);
        ddim_sampler<float> s(noise_schedule(1000), {.steps = 50, .eta = eta, .spacing = sp, .clip_x0 = false});
        rng g{123};
        const auto m = stats(s.sample(oracle, {N, 1}, g));
        const auto law = ddim_gaussian_law(s.timesteps(), 0.2, 0.5, eta);
        INFO("eta " << eta << " spacing " << int(sp) << ": mean " << m.mean << " std " << m.std << "; exact law "
                    << law.mean << " " << law.std);
        CHECK(oracle.seen.size() == 50);
        CHECK(oracle.same_t);
        CHECK(oracle.seen.front() == static_cast<std::int64_t>(s.timesteps().back()));  // from high noise down
        // The data: mean within 5 standard errors (0.008); std within 6% (eta = 0) / 15% (eta = 1) of 0.5,
        // DDIM's own discretisation error on 50 steps of the linear schedule (the law: 0.472 / 0.444).
        CHECK(std::abs(m.mean - 0.2) < 0.04);
        CHECK(std::abs(m.std - 0.5) < (eta == 0 ? 0.03 : 0.075));
        // The samples follow the discrete chain's exact law: std within 5 standard errors (0.0055).
        CHECK(std::abs(m.std - law.std) < 0.028);
      }
  }
  SECTION("N(0.3, 0.2^2) with x0 clipping: narrow data under-disperses as the exact law says") {
    gaussian_oracle<float> oracle(0.3, 0.2);
    ddim_sampler<float> s(noise_schedule(1000), {.steps = 50});
    rng g{5};
    const auto m = stats(s.sample(oracle, {N, 1}, g));
    const auto law = ddim_gaussian_law(s.timesteps(), 0.3, 0.2, 0.0);
    INFO("mean " << m.mean << " std " << m.std << "; exact law " << law.mean << " " << law.std);
    CHECK(std::abs(m.mean - 0.3) < 0.015);
    CHECK(std::abs(law.std - 0.176) < 0.001);  // 12% below 0.2 with 50 leading steps
    CHECK(std::abs(m.std - law.std) < 0.01);
  }
  SECTION("a point mass: eta = 0 lands every sample on it") {
    gaussian_oracle<float> oracle(-0.35, 0.0);
    ddim_sampler<float> s(noise_schedule(1000), {.steps = 60});
    rng g{2};
    const auto x = s.sample(oracle, {128, 3}, g);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x.data()[i] == Approx(-0.35).margin(1e-4));
  }
}

TEST_CASE("ddim_sampler: eta = 0 is deterministic; eta > 0 draws noise from the seed", "[diffusion][ddim]") {
  gaussian_oracle<float> oracle(0.0, 0.4);
  tensor<float, cpu> xT({100, 2});
  fill_normal(cpu{}, xT.view(), 0.0f, 1.0f, 17, 0);
  auto run = [&](double eta, std::uint64_t seed) {
    ddim_sampler<float> s(noise_schedule(1000), {.steps = 50, .eta = eta});
    rng g{seed};
    const auto x = s.sample_from(oracle, xT.cview(), g);
    return std::vector<float>(x.data(), x.data() + x.size());
  };
  CHECK(run(0.0, 1) == run(0.0, 1));
  CHECK(run(0.0, 1) == run(0.0, 2));  // the rng is not used beyond x_T
  CHECK(run(0.5, 1) == run(0.5, 1));
  CHECK(run(0.5, 1) != run(0.5, 2));
  // sample() draws x_T from the seed: same seed, same output; another seed, another.
  ddim_sampler<float> s(noise_schedule(1000), {.steps = 20});
  rng g1{3}, g2{3}, g3{4};
  const auto a = s.sample(oracle, {10, 4}, g1);
  const std::vector<float> first(a.data(), a.data() + a.size());
  CHECK(std::equal(first.begin(), first.end(), s.sample(oracle, {10, 4}, g2).data()));
  CHECK_FALSE(std::equal(first.begin(), first.end(), s.sample(oracle, {10, 4}, g3).data()));
}

TEST_CASE("classifier-free guidance: a model wrapper combines eps with ops::cfg_combine", "[diffusion][ddim]") {
  // The wrapper runs the conditional and the unconditional model and returns eps_u + w (eps_c - eps_u);
  // the sampler sees one eps_model. w = 1 samples the conditional data, w = 0 the unconditional.
  gaussian_oracle<float> cond(0.4, 0.1), uncond(-0.2, 0.3);
  tensor<float, cpu> guided;
  float w = 1;
  auto guided_model = [&](const_view<float> x, const_view<std::int64_t> t) {
    const auto eu = uncond(x, t);
    const auto ec = cond(x, t);
    guided.resize(x.shape());
    ops::cfg_combine(cpu{}, eu, ec, w, guided.view());
    return guided.cview();
  };
  ddim_sampler<float> s(noise_schedule(1000), {.steps = 50, .clip_x0 = false});
  auto sample_with = [&](auto&& model) {
    rng g{77};
    const auto x = s.sample(model, {500, 1}, g);
    return std::vector<float>(x.data(), x.data() + x.size());
  };
  const auto c = sample_with(cond), u = sample_with(uncond);
  w = 1;
  const auto g1 = sample_with(guided_model);
  w = 0;
  const auto g0 = sample_with(guided_model);
  for (std::size_t i = 0; i < c.size(); ++i) {
    REQUIRE(g1[i] == Approx(c[i]).margin(1e-4));
    REQUIRE(g0[i] == Approx(u[i]).margin(1e-4));
  }
  // w = 3: the kernel's arithmetic, element by element.
  tensor<float, cpu> a({2, 2}), b({2, 2}), out({2, 2});
  for (std::size_t i = 0; i < 4; ++i) a.data()[i] = float(i), b.data()[i] = 10 - float(i);
  ops::cfg_combine(cpu{}, a.cview(), b.cview(), 3.0f, out.view());
  for (std::size_t i = 0; i < 4; ++i) CHECK(out.data()[i] == Approx(a.data()[i] + 3 * (b.data()[i] - a.data()[i])));
  tensor<float, cpu> wrong({2, 3});
  CHECK_THROWS_AS(ops::cfg_combine(cpu{}, a.cview(), wrong.cview(), 1.0f, out.view()), shape_error);
}

TEST_CASE("ddim_sampler: bad shapes and options are errors naming the function", "[diffusion][ddim]") {
  const noise_schedule sched(100, linear_schedule{});
  rng g{1};
  ddim_sampler<float> s(sched, {.steps = 10});
  tensor<float, cpu> wrong({3, 2});
  auto bad_model = [&](const_view<float>, const_view<std::int64_t>) { return wrong.cview(); };
  CHECK_THROWS_WITH(s.sample(bad_model, {3, 5}, g), Catch::Contains("ddim_sampler::step") &&
                                                        Catch::Contains("eps_model output") &&
                                                        Catch::Contains("[3, 5]") && Catch::Contains("[3, 2]"));
  auto ok_model = [&](const_view<float> x, const_view<std::int64_t>) { return x; };
  CHECK_THROWS_AS(s.sample(ok_model, {0, 4}, g), shape_error);
  tensor<float, cpu> x({2, 2});
  CHECK_THROWS_WITH(s.step(ok_model, x.view(), 10, g), Catch::Contains("step 10 out of range"));
  CHECK_THROWS_AS(ddim_sampler<float>(sched, {.steps = 0}), config_error);
  CHECK_THROWS_AS(ddim_sampler<float>(sched, {.steps = 101}), config_error);
  CHECK_THROWS_WITH(ddim_sampler<float>(sched, {.eta = -0.1}), Catch::Contains("eta"));
  CHECK_THROWS_AS(ddim_sampler<float>(sched, {.clamp_x = true, .x_clip = -1.0}), config_error);
  CHECK_THROWS_WITH(ddim_sampler<float>(sched, {.timesteps = {0, 50, 50}}), Catch::Contains("tau[2] = 50"));
  CHECK_THROWS_AS(ddim_sampler<float>(sched, {.timesteps = {0, 100}}), config_error);
  ddim_sampler<float> custom(sched, {.steps = 3, .timesteps = {0, 10, 99}});
  CHECK(custom.options().steps == 3);
  CHECK(std::vector<std::size_t>(custom.timesteps().begin(), custom.timesteps().end()) ==
        std::vector<std::size_t>{0, 10, 99});
}
