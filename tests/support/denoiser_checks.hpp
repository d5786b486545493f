#pragma once
// Checks every conditional denoiser (pdiff_unet, bottom_unet, mlp_denoiser) must pass, in double:
//   denoiser_gradcheck(net, n)        d cond and every parameter gradient against central differences
//   check_samples_independent(net)    a sample's eps_hat depends on its own z, t and cond only
//   check_bad_input(make, name)       shape errors naming the argument, for a float net made by make()
//                                     with latent [2, 3], cond_dim 4 and a learned table of 10 timesteps
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "support/gradcheck.hpp"

namespace cpdiff::testing {

inline std::vector<double> copy_of(const_view<double> v) { return {v.data(), v.data() + v.size()}; }

// [n, latent...]
inline shape batch_of(std::size_t n, const shape& latent) {
  std::size_t dims[shape::max_rank] = {n};
  for (std::size_t i = 0; i < latent.rank(); ++i) dims[i + 1] = latent[i];
  return shape::from_range(dims, dims + latent.rank() + 1);
}

// L = sum(eps_hat * r) with distinct timesteps per sample.
template <class Net>
void denoiser_gradcheck(Net& net, std::size_t n) {
  auto& ps = net.parameters();
  const shape zs = batch_of(n, net.latent_shape());
  tensor<double, cpu> z(zs), cond({n, net.cond_dim()}), r(zs);
  tensor<std::int64_t, cpu> t({n});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 1, 1);
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 1, 2);
  for (std::size_t i = 0; i < n; ++i) t.data()[i] = static_cast<std::int64_t>(3 * i + 1);
  REQUIRE(net.forward(z.cview(), t.cview(), cond.cview()).shape() == zs);
  ops::fill(cpu{}, ps.grads(), 0.0);
  auto dcond = net.backward(r.cview());
  REQUIRE(dcond.shape() == cond.shape());
  std::vector<grad_target> targets;
  targets.push_back({"cond", cond.data(), copy_of(dcond)});
  ps.for_each_parameter([&](const param_entry& e, tensor_view<double> v, tensor_view<double> g) {
    targets.push_back({e.name, v.data(), copy_of(g)});
  });
  check_numeric([&] { return dot(net.forward(z.cview(), t.cview(), cond.cview()), r.cview()); }, targets);
}

// Three samples with timesteps 1, 5, 9 (the net's schedule needs T >= 10): each alone gives what it gives in
// the batch, and another timestep for sample 0 changes sample 0 only.
template <class Net>
void check_samples_independent(Net& net) {
  const shape zs = batch_of(3, net.latent_shape());
  tensor<double, cpu> z(zs), cond({3, net.cond_dim()});
  tensor<std::int64_t, cpu> t({3});
  ops::fill_normal(cpu{}, z.view(), 0.0, 1.0, 5, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.0, 1.0, 5, 1);
  t.data()[0] = 1;
  t.data()[1] = 5;
  t.data()[2] = 9;
  const auto all = copy_of(net.forward(z.cview(), t.cview(), cond.cview()));
  const std::size_t s = all.size() / 3;
  for (std::size_t i = 0; i < 3; ++i) {
    auto one = net.forward(z.cview().slice(i, i + 1), t.cview().slice(i, i + 1), cond.cview().slice(i, i + 1));
    for (std::size_t j = 0; j < s; ++j) CHECK(one.data()[j] == Approx(all[i * s + j]).margin(1e-12));
  }
  t.data()[0] = 2;
  auto moved = net.forward(z.cview(), t.cview(), cond.cview());
  double d0 = 0, rest = 0;
  for (std::size_t j = 0; j < s; ++j) d0 += std::abs(moved.data()[j] - all[j]);
  for (std::size_t j = s; j < 3 * s; ++j) rest += std::abs(moved.data()[j] - all[j]);
  CHECK(d0 > 1e-6);
  CHECK(rest == 0);
}

template <class Make>
void check_bad_input(Make make, const std::string& name) {
  auto net = make();
  tensor<float, cpu> z({2, 2, 3}), cond({2, 4}), bad_cond({2, 5}), bad_z({2, 3, 3}), flat_z({2, 6}), empty({0, 2, 3});
  tensor<std::int64_t, cpu> t({2}), bad_t({3});
  ops::fill_normal(cpu{}, z.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, cond.view(), 0.f, 1.f, 1, 1);
  t.data()[0] = t.data()[1] = 0;
  REQUIRE_THROWS_WITH(net.backward(z.cview()), Catch::Contains("before forward"));
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), bad_cond.cview()),
                      Catch::Contains(name + "::forward") && Catch::Contains("condition") && Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_WITH(net.forward(bad_z.cview(), t.cview(), cond.cview()),
                      Catch::Contains("latent") && Catch::Contains("[2, 3, 3]"));
  REQUIRE_THROWS_WITH(net.forward(flat_z.cview(), t.cview(), cond.cview()), Catch::Contains("latent"));
  REQUIRE_THROWS_AS(net.forward(empty.cview(), t.cview(), cond.cview()), shape_error);
  REQUIRE_THROWS_WITH(net.forward(z.cview(), bad_t.cview(), cond.cview()), Catch::Contains("timesteps"));
  t.data()[1] = 10;  // outside the learned table
  REQUIRE_THROWS_WITH(net.forward(z.cview(), t.cview(), cond.cview()), Catch::Contains("timestep 10"));
  t.data()[1] = 1;
  net.forward(z.cview(), t.cview(), cond.cview());
  REQUIRE_THROWS_WITH(net.backward(flat_z.cview()), Catch::Contains(name + "::backward"));
}

}  // namespace cpdiff::testing
