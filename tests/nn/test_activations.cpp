#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

#include <cmath>
#include <limits>
#include <ratio>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/activation.hpp"

using namespace cpdiff;

static_assert(layer<nn::gelu<double>> && layer<nn::leaky_relu<std::ratio<1, 5>, float>>,
              "activations satisfy the one-input layer concept");

namespace {

// Normal values pushed at least `gap` away from 0, so no finite-difference step straddles the kink of
// relu / leaky_relu / elu (a step of eps = 1e-6 around x = 0 would mix the two slopes).
tensor<double, cpu> away_from_zero(shape s, double gap, std::uint64_t seed) {
  tensor<double, cpu> x(s);
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.5, seed, 0);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] += std::copysign(gap, x.data()[i]);
  return x;
}

// Input gradient of an activation vs central differences of L = sum(y * r).
template <class L>
void check_activation_grad(L& act, shape s = {2, 3, 7}) {
  auto x = away_from_zero(s, 0.05, 99);
  tensor<double, cpu> r(s);
  ops::fill_normal(cpu{}, r.view(), 0.0, 1.0, 99, 1);
  act.forward(x.cview());
  auto dx = act.backward(r.cview());
  std::vector<testing::grad_target> targets;
  targets.push_back({"input", x.data(), std::vector<double>(dx.data(), dx.data() + dx.size())});
  testing::check_numeric([&] { return testing::dot(act.forward(x.cview()), r.cview()); }, targets);
}

// Forward output and input gradient against PyTorch (float64) for one fixture case.
template <class L>
void check_parity(L& act, const std::string& name) {
  testing::fixture f(name);
  auto x = f.tensor("x"), dy = f.tensor("dy"), y_ref = f.tensor("y"), dx_ref = f.tensor("dx");
  testing::require_close(act.forward(x.cview()), y_ref.cview(), 1e-10, name + " y");
  testing::require_close(act.backward(dy.cview()), dx_ref.cview(), 1e-10, name + " dx");
}

// A leaky ReLU whose slope is chosen at run time, to show that a stateful functor works too.
struct runtime_leaky_fn {
  static constexpr const char* name = "runtime_leaky";
  double slope = 0.01;
  template <class T>
  T value(T x) const { return x > T(0) ? x : T(slope) * x; }
  template <class T>
  T derivative(T x, T) const { return x > T(0) ? T(1) : T(slope); }
};

}  // namespace

TEST_CASE("activations: gradcheck in double", "[nn][activation]") {
  SECTION("relu") { nn::relu<double> a; check_activation_grad(a); }
  SECTION("leaky_relu 0.01") { nn::leaky_relu<std::ratio<1, 100>, double> a; check_activation_grad(a); }
  SECTION("leaky_relu 0.2") { nn::leaky_relu<std::ratio<1, 5>, double> a; check_activation_grad(a); }
  SECTION("elu alpha 1") { nn::elu<std::ratio<1>, double> a; check_activation_grad(a); }
  SECTION("elu alpha 1.5") { nn::elu<std::ratio<3, 2>, double> a; check_activation_grad(a); }
  SECTION("silu") { nn::silu<double> a; check_activation_grad(a); }
  SECTION("gelu erf") { nn::gelu<double> a; check_activation_grad(a); }
  SECTION("gelu tanh") { nn::gelu_tanh<double> a; check_activation_grad(a); }
  SECTION("tanh") { nn::tanh_layer<double> a; check_activation_grad(a); }
  SECTION("sigmoid") { nn::sigmoid<double> a; check_activation_grad(a, {4, 9}); }
}

// Every activation against PyTorch, on each backend: tests/parity/layer_cases.hpp. Here: the same check of
// an activation whose functor carries its slope at run time.
TEST_CASE("activations: a run-time slope matches PyTorch's leaky_relu 0.2", "[nn][activation][parity]") {
  nn::activation<runtime_leaky_fn, double> a(runtime_leaky_fn{0.2});
  check_parity(a, "leaky_relu_0.2");
}

TEST_CASE("activations: values at the kinks and far tails", "[nn][activation]") {
  // PyTorch's conventions at x = 0: the negative branch's slope.
  tensor<double, cpu> x({5}), dy({5});
  const double xs[] = {0.0, -800.0, 800.0, -3.0, 2.0};
  std::copy(std::begin(xs), std::end(xs), x.data());
  ops::fill(cpu{}, dy.view(), 1.0);

  nn::leaky_relu<std::ratio<1, 5>, double> lr;
  lr.forward(x.cview());
  auto dlr = lr.backward(dy.cview());
  CHECK(dlr(0) == 0.2);
  CHECK(dlr(3) == 0.2);
  CHECK(dlr(4) == 1.0);

  nn::elu<std::ratio<1>, double> elu;
  auto ye = elu.forward(x.cview());
  CHECK(ye(1) == -1.0);
  CHECK(ye(3) == Approx(std::exp(-3.0) - 1.0).epsilon(1e-15));
  CHECK(elu.backward(dy.cview())(0) == 1.0);  // alpha e^0

  // No overflow to NaN in the far tails, in float as well.
  tensor<float, cpu> xf({5});
  for (std::size_t i = 0; i < 5; ++i) xf.data()[i] = static_cast<float>(xs[i]);
  nn::sigmoid<float> sg;
  auto ys = sg.forward(xf.cview());
  CHECK(ys(0) == 0.5f);
  CHECK(ys(1) == 0.0f);
  CHECK(ys(2) == 1.0f);
  nn::silu<float> si;
  auto ysi = si.forward(xf.cview());
  CHECK(ysi(1) == 0.0f);
  CHECK(ysi(2) == 800.0f);
  nn::gelu<float> ge;
  auto yg = ge.forward(xf.cview());
  CHECK(yg(1) == 0.0f);
  CHECK(yg(2) == 800.0f);
}

TEST_CASE("activations: float agrees with double", "[nn][activation]") {
  auto xd = away_from_zero({3, 11}, 0.0, 5);
  tensor<float, cpu> xf(xd.shape());
  for (std::size_t i = 0; i < xd.size(); ++i) xf.data()[i] = static_cast<float>(xd.data()[i]);
  nn::gelu_tanh<double> gd;
  nn::gelu_tanh<float> gf;
  auto yd = gd.forward(xd.cview());
  auto yf = gf.forward(xf.cview());
  auto dxd = gd.backward(xd.cview());
  auto dxf = gf.backward(xf.cview());
  for (std::size_t i = 0; i < xd.size(); ++i) {
    CHECK(yf.data()[i] == Approx(yd.data()[i]).margin(1e-6));
    CHECK(dxf.data()[i] == Approx(dxd.data()[i]).margin(1e-6));
  }
}

TEST_CASE("activations: bad input is a shape_error naming the layer and shapes", "[nn][activation]") {
  nn::silu<float> a;
  tensor<float, cpu> empty({0, 4}), x({2, 3}), dy({3, 2});
  REQUIRE_THROWS_AS(a.forward(empty.cview()), shape_error);
  REQUIRE_THROWS_WITH(a.forward(empty.cview()), Catch::Contains("nn::silu::forward") && Catch::Contains("[0, 4]"));
  // backward before any forward
  REQUIRE_THROWS_WITH(a.backward(dy.cview()), Catch::Contains("nn::silu::backward"));
  a.forward(x.cview());
  REQUIRE_THROWS_AS(a.backward(dy.cview()), shape_error);
  REQUIRE_THROWS_WITH(a.backward(dy.cview()), Catch::Contains("nn::silu::backward") && Catch::Contains("[2, 3]") &&
                                                  Catch::Contains("[3, 2]"));
  nn::leaky_relu<> lr;
  REQUIRE_THROWS_WITH(lr.forward(empty.cview()), Catch::Contains("nn::leaky_relu::forward"));
}
