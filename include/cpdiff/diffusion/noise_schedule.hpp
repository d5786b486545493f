#pragma once
// Diffusion noise schedules (DDPM, Ho et al. 2020; cosine from Nichol & Dhariwal 2021).
//
// A schedule policy is a small value type with `std::vector<double> betas(std::size_t T) const`;
// noise_schedule turns one into every per-timestep coefficient the objective and samplers need,
// once, in double, on the host. Timesteps are 0-indexed: t in [0, T), and x_t is x0 after t + 1
// noising steps, as in the DDPM / p-diff code.
//
//   noise_schedule s(1000, linear_schedule{});      // the paper's: beta 1e-4 .. 0.02
//   s.sqrt_alphas_cumprod()[t]                      // one coefficient, double
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cpdiff/core/error.hpp"

namespace cpdiff::diffusion {

// beta_t = linspace(beta_start, beta_end, T)[t]   (DDPM; the paper and p-diff use these values)
struct linear_schedule {
  double beta_start = 1e-4, beta_end = 0.02;
  static constexpr const char* name = "linear";
  std::vector<double> betas(std::size_t T) const;
};

// alpha_bar(u) = cos^2((u + s) / (1 + s) * pi / 2); beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), max_beta)
struct cosine_schedule {
  double s = 0.008, max_beta = 0.999;
  static constexpr const char* name = "cosine";
  std::vector<double> betas(std::size_t T) const;
};

// beta_t = linspace(sqrt(beta_start), sqrt(beta_end), T)[t]^2
struct quadratic_schedule {
  double beta_start = 1e-4, beta_end = 0.02;
  static constexpr const char* name = "quadratic";
  std::vector<double> betas(std::size_t T) const;
};

// beta_t = beta_start + (beta_end - beta_start) * sigmoid(linspace(-6, 6, T)[t])
struct sigmoid_schedule {
  double beta_start = 1e-4, beta_end = 0.02;
  static constexpr const char* name = "sigmoid";
  std::vector<double> betas(std::size_t T) const;
};

// A user schedule: any type with betas(T) -> std::vector<double> and a static `name`.
template <class P>
concept schedule_policy = requires(const P& p, std::size_t T) {
  { p.betas(T) } -> std::convertible_to<std::vector<double>>;
  { P::name } -> std::convertible_to<const char*>;
};

class noise_schedule {
 public:
  // T timesteps from a policy. T < 2 or betas outside (0, 1) -> config_error.
  template <schedule_policy P>
  noise_schedule(std::size_t T, const P& policy) : name_(P::name) {
    CPDIFF_CHECK(T >= 2, config_error, "diffusion::noise_schedule", name_, " schedule: T must be at least 2, got ", T);
    init(policy.betas(T));
  }
  // The paper's schedule: linear, beta 1e-4 .. 0.02.
  explicit noise_schedule(std::size_t T = 1000) : noise_schedule(T, linear_schedule{}) {}
  // From explicit betas (any user schedule): size >= 2, each in (0, 1), else config_error.
  explicit noise_schedule(std::vector<double> betas, std::string name = "custom") : name_(std::move(name)) {
    init(std::move(betas));
  }

  std::size_t num_timesteps() const { return betas_.size(); }
  std::size_t size() const { return betas_.size(); }
  const std::string& name() const { return name_; }

  // Each [T], indexed by t in [0, T).
  std::span<const double> betas() const { return betas_; }
  std::span<const double> alphas() const { return alphas_; }                              // 1 - beta
  std::span<const double> alphas_cumprod() const { return acp_; }                         // prod_{s<=t} alpha_s
  std::span<const double> alphas_cumprod_prev() const { return acp_prev_; }               // [1, acp[:-1]]
  std::span<const double> sqrt_alphas_cumprod() const { return sqrt_acp_; }
  std::span<const double> sqrt_one_minus_alphas_cumprod() const { return sqrt_1m_acp_; }
  std::span<const double> sqrt_recip_alphas_cumprod() const { return sqrt_recip_acp_; }   // 1 / sqrt(acp)
  std::span<const double> sqrt_recipm1_alphas_cumprod() const { return sqrt_recipm1_acp_; }  // sqrt(1/acp - 1)
  // Variance of q(x_{t-1} | x_t, x0): beta_t (1 - acp_prev) / (1 - acp); 0 at t = 0.
  std::span<const double> posterior_variance() const { return post_var_; }
  // log of posterior_variance with the t = 0 entry (zero) replaced by the t = 1 entry.
  std::span<const double> posterior_log_variance_clipped() const { return post_log_var_; }
  // Posterior mean = coef1 * x0 + coef2 * x_t.
  std::span<const double> posterior_mean_coef1() const { return post_c1_; }  // beta sqrt(acp_prev) / (1 - acp)
  std::span<const double> posterior_mean_coef2() const { return post_c2_; }  // (1 - acp_prev) sqrt(alpha) / (1 - acp)
  // DDPM's "fixed large" reverse variance (p-diff): log(append(posterior_variance[1], betas[1:])).
  std::span<const double> log_variance_fixed_large() const { return log_var_large_; }

 private:
  void init(std::vector<double> betas);

  std::string name_;
  std::vector<double> betas_, alphas_, acp_, acp_prev_, sqrt_acp_, sqrt_1m_acp_, sqrt_recip_acp_,
      sqrt_recipm1_acp_, post_var_, post_log_var_, post_c1_, post_c2_, log_var_large_;
};

// ---- definitions ----

namespace detail {
// numpy.linspace(a, b, n): a + i * (b - a) / (n - 1), the last point exactly b.
inline std::vector<double> linspace(double a, double b, std::size_t n) {
  std::vector<double> v(n);
  const double step = n > 1 ? (b - a) / static_cast<double>(n - 1) : 0.0;
  for (std::size_t i = 0; i < n; ++i) v[i] = a + static_cast<double>(i) * step;
  if (n > 1) v[n - 1] = b;
  return v;
}
}  // namespace detail

inline std::vector<double> linear_schedule::betas(std::size_t T) const { return detail::linspace(beta_start, beta_end, T); }

inline std::vector<double> cosine_schedule::betas(std::size_t T) const {
  CPDIFF_CHECK(s >= 0 && max_beta > 0 && max_beta < 1, config_error, "diffusion::cosine_schedule",
               "need s >= 0 and max_beta in (0, 1), got s = ", s, ", max_beta = ", max_beta);
  auto alpha_bar = [&](double u) {
    const double c = std::cos((u + s) / (1 + s) * std::numbers::pi / 2);
    return c * c;
  };
  std::vector<double> b(T);
  const double Td = static_cast<double>(T);
  for (std::size_t t = 0; t < T; ++t) {
    const double v = 1 - alpha_bar(static_cast<double>(t + 1) / Td) / alpha_bar(static_cast<double>(t) / Td);
    b[t] = std::min(v, max_beta);
  }
  return b;
}

inline std::vector<double> quadratic_schedule::betas(std::size_t T) const {
  CPDIFF_CHECK(beta_start >= 0 && beta_end >= 0, config_error, "diffusion::quadratic_schedule",
               "beta_start and beta_end must be non-negative, got ", beta_start, ", ", beta_end);
  std::vector<double> b = detail::linspace(std::sqrt(beta_start), std::sqrt(beta_end), T);
  for (double& x : b) x *= x;
  return b;
}

inline std::vector<double> sigmoid_schedule::betas(std::size_t T) const {
  std::vector<double> b = detail::linspace(-6.0, 6.0, T);
  for (double& x : b) x = beta_start + (beta_end - beta_start) / (1 + std::exp(-x));
  return b;
}

inline void noise_schedule::init(std::vector<double> betas) {
  const std::size_t T = betas.size();
  CPDIFF_CHECK(T >= 2, config_error, "diffusion::noise_schedule", name_, " schedule: need at least 2 betas, got ", T);
  for (std::size_t t = 0; t < T; ++t)
    CPDIFF_CHECK(std::isfinite(betas[t]) && betas[t] > 0 && betas[t] < 1, config_error, "diffusion::noise_schedule",
                 name_, " schedule: beta[", t, "] = ", betas[t], " is outside (0, 1)");
  betas_ = std::move(betas);
  for (auto* v : {&alphas_, &acp_, &acp_prev_, &sqrt_acp_, &sqrt_1m_acp_, &sqrt_recip_acp_, &sqrt_recipm1_acp_,
                  &post_var_, &post_log_var_, &post_c1_, &post_c2_, &log_var_large_})
    v->resize(T);
  double prod = 1;
  for (std::size_t t = 0; t < T; ++t) {
    alphas_[t] = 1 - betas_[t];
    acp_prev_[t] = prod;
    prod *= alphas_[t];
    acp_[t] = prod;
  }
  for (std::size_t t = 0; t < T; ++t) {
    const double a = acp_[t], ap = acp_prev_[t], b = betas_[t];
    sqrt_acp_[t] = std::sqrt(a);
    sqrt_1m_acp_[t] = std::sqrt(1 - a);
    sqrt_recip_acp_[t] = std::sqrt(1 / a);
    sqrt_recipm1_acp_[t] = std::sqrt(1 / a - 1);
    post_var_[t] = b * (1 - ap) / (1 - a);
    post_c1_[t] = b * std::sqrt(ap) / (1 - a);
    post_c2_[t] = (1 - ap) * std::sqrt(alphas_[t]) / (1 - a);
  }
  CPDIFF_CHECK(acp_[T - 1] > 0, config_error, "diffusion::noise_schedule", name_,
               " schedule: alphas_cumprod underflows to 0 at t = ", T - 1);
  // posterior_variance[0] is 0; log-clip it to the t = 1 value (the DDPM code's convention).
  for (std::size_t t = 0; t < T; ++t) post_log_var_[t] = std::log(post_var_[t == 0 ? 1 : t]);
  log_var_large_[0] = std::log(post_var_[1]);
  for (std::size_t t = 1; t < T; ++t) log_var_large_[t] = std::log(betas_[t]);
}

}  // namespace cpdiff::diffusion
