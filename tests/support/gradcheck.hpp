#pragma once
// gradcheck: compare a layer's analytic backward pass against central finite differences, in double.
// The scalar checked is L = sum(y * r) for a fixed random r, so dL/dy = r is what backward() receives.
//
//   parameter_store<double, cpu> ps; rng g{1};
//   nn::linear<3, 4, double> fc(ps, "fc", g);
//   testing::gradcheck(fc, ps, {2, 3});
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "cpdiff/cpdiff.hpp"

namespace cpdiff::testing {

struct grad_target {
  std::string name;
  double* value;                 // perturbed in place
  std::vector<double> analytic;  // dL/dvalue from backward()
};

struct gradcheck_options {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  std::uint64_t seed = 12345;
};

// Perturbs every element of every target and compares (L(v+eps) - L(v-eps)) / 2eps with the analytic value.
inline void check_numeric(const std::function<double()>& loss, std::vector<grad_target>& targets,
                          const gradcheck_options& o = {}) {
  for (auto& t : targets) {
    std::size_t bad = 0;
    double worst = 0;
    for (std::size_t i = 0; i < t.analytic.size(); ++i) {
      const double v = t.value[i];
      t.value[i] = v + o.eps;
      const double lp = loss();
      t.value[i] = v - o.eps;
      const double lm = loss();
      t.value[i] = v;
      const double num = (lp - lm) / (2 * o.eps), ana = t.analytic[i];
      const double err = std::abs(num - ana), allowed = o.atol + o.rtol * std::max(std::abs(num), std::abs(ana));
      worst = std::max(worst, err);
      if (err > allowed && bad++ < 5) {
        INFO(t.name << "[" << i << "]: analytic " << ana << ", numeric " << num);
        CHECK(err <= allowed);
      }
    }
    INFO(t.name << ": " << t.analytic.size() << " elements, " << bad << " mismatched, worst |error| " << worst);
    CHECK(bad == 0);
  }
}

inline double dot(const_view<double> a, const_view<double> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}

// Whole-layer check: input gradient and every trainable parameter's gradient. The gradient buffer is
// pre-filled with noise first, so the check also holds the contract that backward ADDS into it (the
// analytic gradient is what backward added) and leaves frozen entries exactly as they were.
template <class L>
void gradcheck(L& layer, parameter_store<double, cpu>& ps, shape x_shape, gradcheck_options o = {}) {
  tensor<double, cpu> x(x_shape);
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, o.seed, 0);
  const_view<double> y = layer.forward(x.cview());
  tensor<double, cpu> r(y.shape());
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, o.seed, 1);
  ops::fill_normal(cpu{}, ps.grads(), 0.0, 1.0, o.seed, 2);  // what backward must add to
  const std::vector<double> before(ps.grads().data(), ps.grads().data() + ps.size());
  const_view<double> dx = layer.backward(r.cview());
  std::vector<grad_target> targets;
  targets.push_back({"input", x.data(), std::vector<double>(dx.data(), dx.data() + dx.size())});
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> g) {
    std::vector<double> added(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) added[i] = g.data()[i] - before[e.offset + i];
    if (e.trainable) {
      targets.push_back({e.name, v.data(), std::move(added)});
    } else {
      std::size_t touched = 0;
      for (double d : added) touched += d != 0.0 ? 1 : 0;
      INFO("frozen parameter " << e.name << ": backward changed " << touched << " of " << added.size()
                               << " gradient entries (it must leave frozen entries alone)");
      CHECK(touched == 0);
    }
  });
  check_numeric([&] { return dot(layer.forward(x.cview()), r.cview()); }, targets, o);
}

}  // namespace cpdiff::testing
