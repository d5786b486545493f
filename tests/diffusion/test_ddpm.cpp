// DDPM objective (q_sample, timesteps, loss) and the DDPM ancestral sampler, the latter driven by an
// ORACLE denoiser: for data from a 1-D Gaussian mixture the optimal eps prediction is known in closed
// form, so a correct sampler must reproduce the data distribution.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <omp.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/diffusion/ddpm_sampler.hpp"
#include "cpdiff/io/npy.hpp"

using namespace cpdiff;
using namespace cpdiff::diffusion;

namespace {

std::vector<double> fixture(const std::string& name) {
  return io::load_npy<double>(std::string(CPDIFF_FIXTURES_DIR) + "/diffusion/linear_T1000/" + name + ".npy").data;
}

// E[eps | x_t] for x0 ~ sum_k w_k N(mu_k, s_k^2), element-wise: with v_k = acp s_k^2 + 1 - acp,
//   eps*_k = (x_t - sqrt(acp) mu_k) sqrt(1 - acp) / v_k, weighted by the posterior responsibility
//   r_k ~ w_k N(x_t; sqrt(acp) mu_k, v_k). Computed in double from the numpy alphas_cumprod.
template <class T>
struct mixture_oracle {
  mixture_oracle(std::vector<double> w_, std::vector<double> mu_, std::vector<double> s_)
      : w(std::move(w_)), mu(std::move(mu_)), s(std::move(s_)) {}
  std::vector<double> w, mu, s;
  std::vector<double> acp = fixture("alphas_cumprod");
  tensor<T, cpu> out;
  std::size_t calls = 0;

  const_view<T> operator()(const_view<T> x, const_view<std::int64_t> t) {
    ++calls;
    out.resize(x.shape());
    const std::size_t N = x.dim(0), D = x.size() / N;
    std::vector<double> lr(w.size());
    for (std::size_t n = 0; n < N; ++n) {
      const double a = acp[static_cast<std::size_t>(t.data()[n])];
      for (std::size_t j = 0; j < D; ++j) {
        const double xt = x.data()[n * D + j];
        double mx = -1e300;
        for (std::size_t k = 0; k < w.size(); ++k) {
          const double v = a * s[k] * s[k] + 1 - a, r = xt - std::sqrt(a) * mu[k];
          lr[k] = std::log(w[k]) - 0.5 * std::log(v) - 0.5 * r * r / v;
          mx = std::max(mx, lr[k]);
        }
        double z = 0, e = 0;
        for (std::size_t k = 0; k < w.size(); ++k) {
          const double v = a * s[k] * s[k] + 1 - a, p = std::exp(lr[k] - mx);
          z += p;
          e += p * (xt - std::sqrt(a) * mu[k]) * std::sqrt(1 - a) / v;
        }
        out.data()[n * D + j] = static_cast<T>(e / z);
      }
    }
    return out.cview();
  }
};

struct moments {
  double mean, std;
};
template <class V>
moments stats(const V& x, std::size_t first = 0, std::size_t last = std::size_t(-1)) {
  last = std::min(last, x.size());
  double s = 0, q = 0;
  for (std::size_t i = first; i < last; ++i) s += x.data()[i];
  const double m = s / static_cast<double>(last - first);
  for (std::size_t i = first; i < last; ++i) q += (x.data()[i] - m) * (x.data()[i] - m);
  return {m, std::sqrt(q / static_cast<double>(last - first - 1))};
}

// The exact law of the DDPM output for Gaussian data N(mu, s^2) and no clipping. With d_t = x_t - sqrt(acp_t) mu,
// one step is affine: d_{t-1} = k_t d_t + sigma_t z, k_t = coef1 sqrt(acp) s^2 / v + coef2 (v = acp s^2 + 1 - acp),
// because coef1 + coef2 sqrt(acp) = sqrt(acp_prev). Start: x_T ~ N(0, 1), so d ~ N(-sqrt(acp_T) mu, 1).
moments ddpm_gaussian_law(double mu, double s, bool large) {
  const auto acp = fixture("alphas_cumprod"), c1 = fixture("posterior_mean_coef1"), c2 = fixture("posterior_mean_coef2");
  const auto lv = fixture(large ? "log_variance_fixed_large" : "posterior_log_variance_clipped");
  double m = -std::sqrt(acp[999]) * mu, V = 1;
  for (std::size_t t = 1000; t-- > 0;) {
    const double a = acp[t], v = a * s * s + 1 - a, k = c1[t] * std::sqrt(a) * s * s / v + c2[t];
    const double var = t == 0 ? 0.0 : std::exp(lv[t]);
    m *= k;
    V = k * k * V + var;
  }
  return {mu + m, std::sqrt(V)};
}

}  // namespace

TEST_CASE("ddpm_objective: timesteps are uniform on {0..T-1} and reproducible", "[diffusion][ddpm]") {
  std::vector<std::int64_t> t(100000), t2(100000);
  draw_timesteps<std::int64_t>(t, 1000, 42, 3);
  draw_timesteps<std::int64_t>(t2, 1000, 42, 3);
  CHECK(t == t2);
  std::vector<std::size_t> hist(10, 0);
  double mean = 0;
  for (auto v : t) {
    REQUIRE((v >= 0 && v < 1000));
    ++hist[static_cast<std::size_t>(v) / 100];
    mean += static_cast<double>(v);
  }
  mean /= 1e5;
  CHECK(std::abs(mean - 499.5) < 5 * 288.7 / std::sqrt(1e5));  // 5 standard errors
  for (auto h : hist) CHECK(std::abs(static_cast<double>(h) - 1e4) < 5 * 95);
  CHECK(*std::min_element(t.begin(), t.end()) == 0);
  CHECK(*std::max_element(t.begin(), t.end()) == 999);
}

TEST_CASE("ddpm_objective: x_t = sqrt(acp[t_n]) x0 + sqrt(1 - acp[t_n]) eps, row by row", "[diffusion][ddpm]") {
  ddpm_objective<double> obj(noise_schedule(1000));
  tensor<double, cpu> x0({6, 3, 2});
  for (std::size_t i = 0; i < x0.size(); ++i) x0.data()[i] = std::sin(1.0 + static_cast<double>(i));
  const std::vector<std::int64_t> t{0, 1, 500, 999, 10, 250};
  rng g{11};
  auto [x_t, tv] = obj.prepare(x0.cview(), t, g);
  CHECK(g.next_stream == 1);  // given timesteps: only the noise stream is taken
  const auto sa = fixture("sqrt_alphas_cumprod"), sb = fixture("sqrt_one_minus_alphas_cumprod");
  REQUIRE(x_t.shape() == x0.shape());
  REQUIRE(tv.size() == 6);
  for (std::size_t n = 0; n < 6; ++n) {
    CHECK(tv.data()[n] == t[n]);
    for (std::size_t j = 0; j < 6; ++j) {
      const std::size_t i = n * 6 + j;
      const double want = sa[t[n]] * x0.data()[i] + sb[t[n]] * obj.eps().data()[i];
      CHECK(x_t.data()[i] == Approx(want).epsilon(1e-14).margin(1e-15));
    }
  }
}

TEST_CASE("ddpm_objective: q_sample statistics", "[diffusion][ddpm]") {
  const noise_schedule sched(1000);
  ddpm_objective<float> obj(sched);
  const std::size_t N = 2000, D = 16;
  tensor<float, cpu> x0({N, D});
  fill(cpu{}, x0.view(), 0.5f);
  const std::vector<std::int64_t> t(N, 300);
  rng g{5};
  auto p = obj.prepare(x0.cview(), t, g);
  // Per element x_t ~ N(sqrt(acp) 0.5, 1 - acp); 32000 samples: 5 standard errors.
  const double a = sched.alphas_cumprod()[300];
  const auto m = stats(p.x_t);
  CHECK(std::abs(m.mean - std::sqrt(a) * 0.5) < 5 * std::sqrt(1 - a) / std::sqrt(N * D));
  CHECK(m.std == Approx(std::sqrt(1 - a)).epsilon(0.02));
  const auto e = stats(obj.eps());
  CHECK(std::abs(e.mean) < 5 / std::sqrt(N * D));
  CHECK(e.std == Approx(1.0).epsilon(0.02));

  // Random t and x0 = 0: E[x_t^2] = mean_t (1 - acp_t).
  fill(cpu{}, x0.view(), 0.0f);
  p = obj.prepare(x0.cview(), g);
  double want = 0;
  for (std::size_t s = 0; s < 1000; ++s) want += (1 - sched.alphas_cumprod()[s]) / 1000;
  const auto r = stats(p.x_t);
  CHECK(r.std * r.std == Approx(want).epsilon(0.03));
}

TEST_CASE("ddpm_objective: loss and gradient are the MSE against the drawn noise", "[diffusion][ddpm]") {
  ddpm_objective<double> obj(noise_schedule(100, cosine_schedule{}));
  tensor<double, cpu> x0({4, 5}), eps_hat({4, 5});
  for (std::size_t i = 0; i < 20; ++i) {
    x0.data()[i] = 0.1 * static_cast<double>(i) - 1;
    eps_hat.data()[i] = std::cos(static_cast<double>(i));
  }
  rng g{3};
  obj.prepare(x0.cview(), g);
  CHECK(g.next_stream == 2);  // timesteps, then noise
  double want = 0;
  for (std::size_t i = 0; i < 20; ++i) want += std::pow(eps_hat.data()[i] - obj.eps().data()[i], 2) / 20;
  auto [loss, d] = obj.loss_and_grad(eps_hat.cview());
  CHECK(loss == Approx(want).epsilon(1e-14));
  // Central differences of the loss in each eps_hat element.
  for (std::size_t i = 0; i < 20; ++i) {
    const double v = eps_hat.data()[i], h = 1e-6;
    eps_hat.data()[i] = v + h;
    const double lp = obj.loss_and_grad(eps_hat.cview()).loss;
    eps_hat.data()[i] = v - h;
    const double lm = obj.loss_and_grad(eps_hat.cview()).loss;
    eps_hat.data()[i] = v;
    const double dl = obj.loss_and_grad(eps_hat.cview()).d_eps_hat.data()[i];
    CHECK(dl == Approx((lp - lm) / (2 * h)).epsilon(1e-6).margin(1e-9));
  }
}

TEST_CASE("ddpm_objective: reproducible under a seed, and no reallocation once warm", "[diffusion][ddpm]") {
  ddpm_objective<float> a(noise_schedule(1000)), b(noise_schedule(1000));
  tensor<float, cpu> x0({8, 4, 3});
  fill(cpu{}, x0.view(), 0.25f);
  rng ga{99}, gb{99}, gc{100};
  const auto pa = a.prepare(x0.cview(), ga);
  const auto pb = b.prepare(x0.cview(), gb);
  CHECK(std::equal(pa.t.data(), pa.t.data() + 8, pb.t.data()));
  CHECK(std::equal(pa.x_t.data(), pa.x_t.data() + pa.x_t.size(), pb.x_t.data()));
  const float* xt_ptr = pa.x_t.data();
  const std::vector<float> first(pa.x_t.data(), pa.x_t.data() + pa.x_t.size());
  const auto pc = a.prepare(x0.cview(), gc);  // another seed: different draws, same buffers
  CHECK(pc.x_t.data() == xt_ptr);
  CHECK_FALSE(std::equal(first.begin(), first.end(), pc.x_t.data()));
  const auto pd = a.prepare(x0.view().slice(0, 3), gc);  // a smaller batch reuses the buffers too
  CHECK(pd.x_t.data() == xt_ptr);
  CHECK(pd.x_t.shape() == shape{3, 4, 3});
}

TEST_CASE("ddpm_objective: bad shapes are shape_errors naming the function", "[diffusion][ddpm]") {
  ddpm_objective<float> obj(noise_schedule(1000));
  rng g{1};
  tensor<float, cpu> x0({4, 3}), empty({0, 3}), bad({4, 2});
  CHECK_THROWS_WITH(obj.loss_and_grad(bad.cview()), Catch::Contains("call prepare() first"));
  CHECK_THROWS_AS(obj.prepare(empty.cview(), g), shape_error);
  CHECK_THROWS_WITH(obj.prepare(empty.cview(), g),
                    Catch::Contains("diffusion::ddpm_objective::prepare") && Catch::Contains("[0, 3]"));
  obj.prepare(x0.cview(), g);
  CHECK_THROWS_AS(obj.loss_and_grad(bad.cview()), shape_error);
  CHECK_THROWS_WITH(obj.loss_and_grad(bad.cview()), Catch::Contains("ddpm_objective::loss_and_grad") &&
                                                          Catch::Contains("[4, 3]") && Catch::Contains("[4, 2]"));
  const std::vector<std::int64_t> three{1, 2, 3}, out_of_range{0, 1, 1000, 2}, negative{0, -1, 2, 3};
  CHECK_THROWS_WITH(obj.prepare(x0.cview(), three, g), Catch::Contains("expected 4") && Catch::Contains("got 3"));
  CHECK_THROWS_WITH(obj.prepare(x0.cview(), out_of_range, g), Catch::Contains("t[2] = 1000"));
  CHECK_THROWS_AS(obj.prepare(x0.cview(), negative, g), shape_error);
}

TEST_CASE("ddpm_sampler: one step is the posterior mean of the clipped x0 plus sqrt(beta_t) z",
          "[diffusion][ddpm]") {
  const auto c1 = fixture("posterior_mean_coef1"), c2 = fixture("posterior_mean_coef2");
  const auto sr = fixture("sqrt_recip_alphas_cumprod"), srm1 = fixture("sqrt_recipm1_alphas_cumprod");
  const auto lv_large = fixture("log_variance_fixed_large"), lv_small = fixture("posterior_log_variance_clipped");
  const std::vector<double> x_in{-1.0, -0.3, 0.0, 0.2, 0.9, 1.0}, e_in{0.5, -2.0, 0.1, 1.5, -0.7, 3.0};
  tensor<double, cpu> eps({3, 2});
  std::copy(e_in.begin(), e_in.end(), eps.data());
  auto model = [&](const_view<double> x, const_view<std::int64_t>) {
    REQUIRE(x.shape() == shape{3, 2});
    return eps.cview();
  };
  for (const bool large : {true, false})
    for (const bool clip : {true, false})
      for (const std::size_t t : {std::size_t(0), std::size_t(1), std::size_t(40), std::size_t(999)}) {
        INFO("fixed_large " << large << ", clip " << clip << ", t " << t);
        ddpm_sampler_options o;
        o.variance = large ? reverse_variance::fixed_large : reverse_variance::fixed_small;
        o.clip_x0 = o.clamp_x = clip;
        ddpm_sampler<double> s(noise_schedule(1000), o);
        tensor<double, cpu> x({3, 2});
        std::copy(x_in.begin(), x_in.end(), x.data());
        rng g{77, 5};
        s.step(model, x.view(), t, g);
        CHECK(g.next_stream == 6);
        for (std::size_t i = 0; i < 6; ++i) {
          double x0 = sr[t] * x_in[i] - srm1[t] * e_in[i];
          if (clip) x0 = std::clamp(x0, -1.0, 1.0);
          const double sigma = t == 0 ? 0.0 : std::exp(0.5 * (large ? lv_large[t] : lv_small[t]));
          double want = c1[t] * x0 + c2[t] * x_in[i] + sigma * philox_normal(77, 5, i);
          if (clip) want = std::clamp(want, -1.0, 1.0);
          CHECK(x.data()[i] == Approx(want).epsilon(1e-12).margin(1e-13));
        }
      }
}

TEST_CASE("ddpm_sampler: with the oracle denoiser, 1000 steps reproduce the data", "[diffusion][ddpm]") {
  const std::size_t N = 4000;
  SECTION("Gaussian N(0.3, 0.2^2), p-diff's clips on") {
    mixture_oracle<float> oracle{{1.0}, {0.3}, {0.2}};
    ddpm_sampler<float> s(noise_schedule(1000));
    rng g{2024};
    const auto x = s.sample(oracle, {N, 1}, g);
    CHECK(oracle.calls == 1000);
    CHECK(g.next_stream == 1001);
    const auto m = stats(x);
    INFO("mean " << m.mean << " std " << m.std);
    // Clamping x_t to [-1, 1] at high noise biases the chain slightly (200k samples: mean 0.289,
    // std 0.195); standard errors here are 0.0032 and 0.0022.
    CHECK(std::abs(m.mean - 0.3) < 0.02);
    CHECK(std::abs(m.std - 0.2) < 0.015);
  }
  SECTION("Gaussian N(-0.1, 0.5^2), no clipping, as a [N/4, 4] batch; both variances") {
    for (const bool large : {true, false}) {
      mixture_oracle<float> oracle{{1.0}, {-0.1}, {0.5}};
      ddpm_sampler<float> s(noise_schedule(1000),
                            {.variance = large ? reverse_variance::fixed_large : reverse_variance::fixed_small,
                             .clip_x0 = false,
                             .clamp_x = false});
      rng g{7};
      const auto m = stats(s.sample(oracle, {N / 4, 4}, g));
      const auto law = ddpm_gaussian_law(-0.1, 0.5, large);
      INFO("fixed_large " << large << ": mean " << m.mean << " std " << m.std << "; exact law " << law.mean << " "
                          << law.std);
      // The discrete chain's own law is within 1.5% of the data (fixed_large a little wider, fixed_small narrower).
      CHECK(std::abs(law.mean + 0.1) < 1e-3);
      CHECK(std::abs(law.std - 0.5) < 0.0075);
      // The samples follow that law (5 standard errors: 0.008 for the mean, 0.0056 for the std).
      CHECK(std::abs(m.mean - law.mean) < 0.04);
      CHECK(std::abs(m.std - law.std) < 0.028);
    }
  }
  SECTION("two modes 0.3 N(-0.5, 0.1^2) + 0.7 N(0.5, 0.1^2)") {
    mixture_oracle<float> oracle{{0.3, 0.7}, {-0.5, 0.5}, {0.1, 0.1}};
    ddpm_sampler<float> s(noise_schedule(1000));
    rng g{9};
    const auto x = s.sample(oracle, {N, 1}, g);
    std::vector<float> lo, hi;
    for (std::size_t i = 0; i < N; ++i) (x.data()[i] < 0 ? lo : hi).push_back(x.data()[i]);
    const double frac = static_cast<double>(hi.size()) / N;
    const tensor_view<const float> lv(lo.data(), {lo.size()}), hv(hi.data(), {hi.size()});
    const auto ml = stats(lv), mh = stats(hv);
    INFO("fraction " << frac << ", low " << ml.mean << " +- " << ml.std << ", high " << mh.mean << " +- " << mh.std);
    CHECK(std::abs(frac - 0.7) < 0.035);  // standard error 0.0072
    CHECK(std::abs(ml.mean + 0.5) < 0.02);
    CHECK(std::abs(mh.mean - 0.5) < 0.02);
    CHECK(std::abs(ml.std - 0.1) < 0.015);
    CHECK(std::abs(mh.std - 0.1) < 0.015);
  }
  SECTION("a point mass: every sample lands on it") {
    mixture_oracle<float> oracle{{1.0}, {0.4}, {0.0}};
    ddpm_sampler<float> s(noise_schedule(1000));
    rng g{1};
    const auto x = s.sample(oracle, {256, 2}, g);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x.data()[i] == Approx(0.4).margin(1e-4));
  }
}

TEST_CASE("ddpm_sampler: the same seed gives the same samples, another seed others", "[diffusion][ddpm]") {
  mixture_oracle<float> oracle{{1.0}, {0.0}, {0.3}};
  ddpm_sampler<float> s(noise_schedule(200, linear_schedule{1e-3, 0.05}));
  // The oracle reads acp for T = 1000; any consistent eps function will do for reproducibility.
  rng g1{5}, g2{5}, g3{6};
  const auto a = s.sample(oracle, {64, 3}, g1);
  const std::vector<float> first(a.data(), a.data() + a.size());
  const auto b = s.sample(oracle, {64, 3}, g2);
  CHECK(std::equal(first.begin(), first.end(), b.data()));
  const auto c = s.sample(oracle, {64, 3}, g3);
  CHECK_FALSE(std::equal(first.begin(), first.end(), c.data()));
  // sample_from(x_T) with the x_T that sample() draws gives the same result.
  tensor<float, cpu> xT({64, 3});
  fill_normal(cpu{}, xT.view(), 0.0f, 1.0f, 5, 0);
  rng g4{5, 1};
  const auto d = s.sample_from(oracle, xT.cview(), g4);
  CHECK(std::equal(first.begin(), first.end(), d.data()));
}

TEST_CASE("ddpm_sampler: bad shapes and options are errors naming the function", "[diffusion][ddpm]") {
  ddpm_sampler<float> s(noise_schedule(10, linear_schedule{}));
  rng g{1};
  tensor<float, cpu> wrong({4, 2});
  auto bad_model = [&](const_view<float>, const_view<std::int64_t>) { return wrong.cview(); };
  CHECK_THROWS_AS(s.sample(bad_model, {4, 3}, g), shape_error);
  CHECK_THROWS_WITH(s.sample(bad_model, {4, 3}, g), Catch::Contains("ddpm_sampler::step") &&
                                                        Catch::Contains("eps_model output") &&
                                                        Catch::Contains("[4, 3]") && Catch::Contains("[4, 2]"));
  auto ok_model = [&](const_view<float> x, const_view<std::int64_t>) { return x; };
  CHECK_THROWS_WITH(s.sample(ok_model, {0, 3}, g), Catch::Contains("ddpm_sampler::sample") && Catch::Contains("[0, 3]"));
  CHECK_THROWS_AS(s.sample(ok_model, {}, g), shape_error);
  tensor<float, cpu> x({2, 2});
  CHECK_THROWS_WITH(s.step(ok_model, x.view(), 10, g), Catch::Contains("timestep 10 out of range"));
  CHECK_THROWS_AS(ddpm_sampler<float>(noise_schedule(10, linear_schedule{}), {.x0_clip = 0.0}), config_error);
  CHECK_NOTHROW(ddpm_sampler<float>(noise_schedule(10, linear_schedule{}), {.clip_x0 = false, .x0_clip = 0.0}));
}

TEST_CASE("diffusion kernels: the same numbers on 1 thread and on several", "[diffusion][ddpm]") {
  // Large enough for the OpenMP paths (> ops::parallel_grain elements); Philox noise is per element index.
  const std::size_t N = 300, D = 160;
  tensor<float, cpu> x0({N, D});
  for (std::size_t i = 0; i < x0.size(); ++i) x0.data()[i] = std::sin(0.01f * static_cast<float>(i));
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    ddpm_objective<float> obj(noise_schedule(1000));
    rng g{4};
    const auto p = obj.prepare(x0.cview(), g);
    tensor<float, cpu> x({N, D});
    copy(cpu{}, p.x_t, x.view());
    ddpm_sampler<float> s(noise_schedule(1000));
    auto model = [&](const_view<float>, const_view<std::int64_t>) { return obj.eps(); };
    s.step(model, x.view(), 500, g);
    const double loss = obj.loss_and_grad(x.cview()).loss;
    omp_set_num_threads(before);
    std::vector<float> out(x.data(), x.data() + x.size());
    out.push_back(static_cast<float>(loss));
    return out;
  };
  const auto one = run(1), many = run(4);
  CHECK(std::equal(one.begin(), one.end() - 1, many.begin()));
  CHECK(one.back() == Approx(many.back()).epsilon(1e-6));  // the loss is a reduction: summation order differs
}
