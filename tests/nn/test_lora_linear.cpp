#include <cmath>
#include <filesystem>
#include <ratio>
#include <string>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/nn/lora_linear.hpp"
#include "cpdiff/nn/sequential.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

static_assert(layer<nn::lora_linear<5, 4, 2, std::ratio<4>>>);
static_assert(layer<nn::lora_linear<5, 4, 2, std::ratio<1, 2>, double, cpu, false, true>>);

namespace {

template <class L>
void randomize_B(L& l, std::uint64_t seed) {
  using T = typename L::value_type;
  ops::fill_normal(cpu{}, l.lora_B(), T(0), T(0.5), seed, 99);
}

// y[r, o] = sum_i x[r, i] W[o, i] + b[o], written out without gemm.
std::vector<double> naive_base(const_view<double> x, const_view<double> W, const double* b, std::size_t in,
                               std::size_t out) {
  const std::size_t rows = x.size() / in;
  std::vector<double> y(rows * out);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double s = b ? b[o] : 0.0;
      for (std::size_t i = 0; i < in; ++i) s += x.data()[r * in + i] * W.data()[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

// Replays the same dropout mask on every forward (rewinds the rng's stream counter), so that finite
// differences see one fixed function.
template <class L>
struct fixed_mask {
  using value_type = typename L::value_type;
  using backend_type = typename L::backend_type;
  L& l;
  rng& g;
  std::uint64_t stream = g.next_stream;
  typename L::cview forward(typename L::cview x) {
    g.next_stream = stream;
    return l.forward(x);
  }
  typename L::cview backward(typename L::cview dy) { return l.backward(dy); }
};

tensor<double, cpu> load(const std::string& dir, const std::string& name) {
  auto a = io::load_npy<double>(dir + "/" + name + ".npy");
  tensor<double, cpu> t(shape::from_range(a.shape.begin(), a.shape.end()));
  std::copy(a.data.begin(), a.data.end(), t.data());
  return t;
}

void copy_into(const tensor<double, cpu>& src, tensor_view<double> dst) {
  REQUIRE(src.size() == dst.size());
  std::copy(src.data(), src.data() + src.size(), dst.data());
}

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

bool all_zero(const_view<double> v) {
  for (double e : std::span<const double>(v.data(), v.size()))
    if (e != 0.0) return false;
  return true;
}

}  // namespace

TEST_CASE("lora_linear: parameters, names, trainable flags and PEFT init", "[lora][lora_linear]") {
  parameter_store<float, cpu> ps;
  rng g{3};
  nn::lora_linear<16, 8, 4, std::ratio<8>> l(ps, "enc.q", g);
  REQUIRE(ps.count() == 4);
  CHECK(ps.entry(ps.find("enc.q.base_layer.weight")).shape == shape{8, 16});
  CHECK(ps.entry(ps.find("enc.q.base_layer.bias")).shape == shape{8});
  CHECK(ps.entry(ps.find("enc.q.lora_A.weight")).shape == shape{4, 16});
  CHECK(ps.entry(ps.find("enc.q.lora_B.weight")).shape == shape{8, 4});
  CHECK_FALSE(ps.entry(l.weight_id()).trainable);
  CHECK_FALSE(ps.entry(l.bias_id()).trainable);
  CHECK(ps.entry(l.lora_A_id()).trainable);
  CHECK(ps.entry(l.lora_B_id()).trainable);
  CHECK(l.scaling() == 2.0f);
  CHECK(nn::lora_linear<16, 8, 4, std::ratio<8>, float, cpu, true, true>::scaling_value() == 4.0);
  CHECK(nn::lora_linear<16, 8, 4, std::ratio<1, 2>>::scaling_value() == 0.125);

  // A ~ U(-1/sqrt(16), 1/sqrt(16)) = U(-0.25, 0.25), spread over the range; B = 0.
  const auto A = l.lora_A();
  float lo = 1, hi = -1;
  for (float a : A.span()) lo = std::min(lo, a), hi = std::max(hi, a);
  CHECK(lo >= -0.25f);
  CHECK(hi <= 0.25f);
  CHECK(hi - lo > 0.3f);
  for (float b : l.lora_B().span()) CHECK(b == 0.0f);
}

TEST_CASE("lora_linear: works as a member of nn::sequential", "[lora][lora_linear]") {
  parameter_store<float, cpu> ps;
  rng g{3};
  nn::sequential<nn::lora_linear<4, 6, 2, std::ratio<4>>, nn::lora_linear<6, 3, 1, std::ratio<2>>> seq(ps, "blk", g);
  CHECK(seq.get<1>().name() == "blk.1");
  CHECK(ps.entry(ps.find("blk.1.lora_B.weight")).shape == shape{3, 1});
  seq.set_training(false);
  CHECK_FALSE(seq.get<0>().training());
  tensor<float, cpu> x({2, 4});
  ops::fill(cpu{}, x.view(), 1.0f);
  CHECK(seq.forward(x.cview()).shape() == shape{2, 3});
}

TEST_CASE("lora_linear: with B = 0 (fresh) the output is the base layer's", "[lora][lora_linear]") {
  parameter_store<double, cpu> ps;
  rng g{11};
  nn::lora_linear<5, 3, 2, std::ratio<16>, double> l(ps, "m", g, 0.4);  // dropout too: B = 0 hides it
  tensor<double, cpu> x({4, 5});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, 0);
  const auto y = l.forward(x.cview());
  const auto ref = naive_base(x.cview(), l.weight(), l.bias().data(), 5, 3);
  REQUIRE(y.shape() == shape{4, 3});
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(y.data()[i] == Approx(ref[i]).epsilon(1e-14));
}

TEST_CASE("lora_linear: gradcheck in double (A, B, dx; the frozen base gets no gradient)", "[lora][lora_linear]") {
  parameter_store<double, cpu> ps;
  rng g{7};
  SECTION("bias, alpha / r") {
    nn::lora_linear<5, 4, 2, std::ratio<4>, double> l(ps, "m", g);
    randomize_B(l, 1);
    testing::gradcheck(l, ps, {3, 5});  // also: the frozen base's gradient entries are left exactly as they were
  }
  SECTION("no bias, rsLoRA, rank-3 input") {
    nn::lora_linear<6, 3, 3, std::ratio<6>, double, cpu, false, true> l(ps, "m", g);
    randomize_B(l, 2);
    testing::gradcheck(l, ps, {2, 2, 6});
  }
  SECTION("dropout 0.3 in training mode (mask replayed)") {
    nn::lora_linear<7, 5, 3, std::ratio<3, 2>, double> l(ps, "m", g, 0.3);
    randomize_B(l, 3);
    fixed_mask<decltype(l)> f{l, g};
    testing::gradcheck(f, ps, {4, 7});
  }
  SECTION("a base made trainable gets dW and db") {
    nn::lora_linear<4, 4, 1, std::ratio<2>, double> l(ps, "m", g);
    randomize_B(l, 4);
    ps.set_trainable(l.weight_id(), true);
    ps.set_trainable(l.bias_id(), true);
    testing::gradcheck(l, ps, {3, 4});
  }
}

TEST_CASE("lora_linear: PyTorch parity (plain-torch LoRA, float64)", "[lora][lora_linear]") {
  const std::string root = testing::fixtures_dir() + "/lora/";
  auto check_case = [&](auto& l, parameter_store<double, cpu>& ps, const std::string& name, bool bias) {
    const std::string d = root + name;
    INFO("fixture " << d << " (regenerate: /usr/bin/python3 tests/fixtures/make_lora_fixtures.py)");
    REQUIRE(std::filesystem::exists(d + "/case.json"));
    copy_into(load(d, "W"), l.weight());
    if constexpr (std::decay_t<decltype(l)>::has_bias) copy_into(load(d, "b"), l.bias());
    (void)bias;
    copy_into(load(d, "A"), l.lora_A());
    copy_into(load(d, "B"), l.lora_B());
    const auto x = load(d, "x");
    const auto y = l.forward(x.cview());
    testing::require_close(y, load(d, "y").cview(), 1e-10, "y");
    ops::fill(cpu{}, ps.grads(), 0.0);
    const auto dx = l.backward(load(d, "dy").cview());
    testing::require_close(dx, load(d, "dx").cview(), 1e-10, "dx");
    testing::require_close(ps.grad(l.lora_A_id()), load(d, "dA").cview(), 1e-10, "dA");
    testing::require_close(ps.grad(l.lora_B_id()), load(d, "dB").cview(), 1e-10, "dB");
    CHECK(all_zero(ps.grad(l.weight_id())));
  };
  SECTION("r 2, alpha 4, bias") {
    parameter_store<double, cpu> ps;
    rng g{1};
    nn::lora_linear<5, 4, 2, std::ratio<4>, double> l(ps, "m", g);
    check_case(l, ps, "lora_r2_a4", true);
  }
  SECTION("r 3, alpha 6, rsLoRA, no bias, [2, 2, 6] input") {
    parameter_store<double, cpu> ps;
    rng g{1};
    nn::lora_linear<6, 3, 3, std::ratio<6>, double, cpu, false, true> l(ps, "m", g);
    check_case(l, ps, "lora_r3_a6_rslora_nobias", false);
  }
}

TEST_CASE("lora_linear: merge / unmerge (float)", "[lora][lora_linear]") {
  parameter_store<float, cpu> ps;
  rng g{21};
  nn::lora_linear<12, 10, 3, std::ratio<16>> l(ps, "m", g, 0.2f);
  ops::fill_normal(cpu{}, l.lora_B(), 0.0f, 0.3f, 4, 0);
  l.set_training(false);
  tensor<float, cpu> x({6, 12});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 4, 1);
  const std::vector<float> w0(l.weight().data(), l.weight().data() + l.weight().size());
  const auto y_unmerged = ops::to_host(cpu{}, l.forward(x.cview()));

  REQUIRE_FALSE(l.merged());
  l.merge();
  REQUIRE(l.merged());
  // Merged weight = W + s * B A, computed here in double.
  const double s = l.scaling();
  std::vector<double> want(w0.size()), got(w0.size());
  for (std::size_t o = 0; o < 10; ++o)
    for (std::size_t i = 0; i < 12; ++i) {
      double d = 0;
      for (std::size_t r = 0; r < 3; ++r) d += double(l.lora_B()(o, r)) * double(l.lora_A()(r, i));
      want[o * 12 + i] = w0[o * 12 + i] + s * d;
      got[o * 12 + i] = l.weight()(o, i);
    }
  CHECK(max_abs_diff(got, want) < 1e-5);
  CHECK(max_abs_diff(got, std::vector<double>(w0.begin(), w0.end())) > 0.1);  // the merge did something
  l.merge();  // already merged: no-op
  const auto y_merged = ops::to_host(cpu{}, l.forward(x.cview()));
  CHECK(max_abs_diff(y_merged, y_unmerged) < 1e-5);

  // Backward while merged: dx of the merged function, no gradient for A or B (the forward did not read them).
  tensor<float, cpu> dy({6, 10});
  ops::fill_normal(cpu{}, dy.view(), 0.0f, 1.0f, 4, 2);
  ops::fill(cpu{}, ps.grads(), 0.0f);
  const auto dx_merged = ops::to_host(cpu{}, l.backward(dy.cview()));
  for (float v : ps.grad(l.lora_A_id()).span()) CHECK(v == 0.0f);
  for (float v : ps.grad(l.lora_B_id()).span()) CHECK(v == 0.0f);

  // unmerge subtracts what merge added, even after A changed in between.
  const std::vector<float> a0(l.lora_A().data(), l.lora_A().data() + l.lora_A().size());
  ops::fill(cpu{}, l.lora_A(), 0.5f);
  l.unmerge();
  REQUIRE_FALSE(l.merged());
  CHECK(max_abs_diff(ops::to_host(cpu{}, const_view<float>(l.weight())), w0) < 1e-6);
  l.unmerge();  // not merged: no-op
  std::copy(a0.begin(), a0.end(), l.lora_A().data());
  l.forward(x.cview());
  const auto dx_unmerged = ops::to_host(cpu{}, l.backward(dy.cview()));
  CHECK(max_abs_diff(dx_merged, dx_unmerged) < 1e-5);
}

TEST_CASE("lora_linear: dropout acts on the LoRA path in training only", "[lora][lora_linear]") {
  // W = 0, b = 0, A = B = I, s = 1: y = drop(x), so y shows the mask directly.
  parameter_store<double, cpu> ps;
  rng g{5};
  constexpr std::size_t n = 4;
  nn::lora_linear<n, n, n, std::ratio<n>, double> l(ps, "m", g, 0.25);
  ops::fill(cpu{}, l.weight(), 0.0);
  ops::fill(cpu{}, l.bias(), 0.0);
  ops::fill(cpu{}, l.lora_A(), 0.0);
  ops::fill(cpu{}, l.lora_B(), 0.0);
  for (std::size_t i = 0; i < n; ++i) l.lora_A()(i, i) = l.lora_B()(i, i) = 1.0;
  const std::size_t rows = 4000;
  tensor<double, cpu> x({rows, n}), ones({rows, n});
  ops::fill(cpu{}, x.view(), 1.0);
  ops::fill(cpu{}, ones.view(), 1.0);

  const std::uint64_t s0 = g.next_stream;
  const auto y = ops::to_host(cpu{}, l.forward(x.cview()));
  CHECK(l.last_stream() == s0);
  std::size_t zeros = 0, kept = 0;
  for (double v : y) zeros += v == 0.0, kept += v == 1.0 / 0.75;  // kept values are scaled by 1 / (1 - p)
  CHECK(zeros + kept == y.size());
  const double frac = double(zeros) / double(y.size());  // 16000 Bernoulli(0.25): sd 0.0034
  CHECK(frac == Approx(0.25).margin(0.02));
  // dx = drop(dy) with the forward's mask: with dy = 1 it equals y.
  const auto dx = ops::to_host(cpu{}, l.backward(ones.cview()));
  CHECK(max_abs_diff(dx, y) == 0.0);

  // A second forward draws a new mask; rewinding the rng reproduces the first.
  const auto y2 = ops::to_host(cpu{}, l.forward(x.cview()));
  CHECK(max_abs_diff(y2, y) > 0.0);
  g.next_stream = s0;
  CHECK(max_abs_diff(ops::to_host(cpu{}, l.forward(x.cview())), y) == 0.0);

  // Eval mode and p = 0: no dropout.
  const std::vector<double> all_ones(rows * n, 1.0);
  l.set_training(false);
  CHECK(max_abs_diff(ops::to_host(cpu{}, l.forward(x.cview())), all_ones) == 0.0);
  l.set_training(true);
  l.set_dropout(0.0);
  CHECK(max_abs_diff(ops::to_host(cpu{}, l.forward(x.cview())), all_ones) == 0.0);
  REQUIRE_THROWS_AS(l.set_dropout(1.0), config_error);
  REQUIRE_THROWS_AS(l.set_dropout(-0.1), config_error);
}

TEST_CASE("lora_linear: bad inputs are shape_errors naming the layer and shapes", "[lora][lora_linear]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::lora_linear<3, 4, 2, std::ratio<4>> l(ps, "m", g);
  tensor<float, cpu> wrong({2, 5}), empty({0, 3}), x({2, 3}), dy_wrong({2, 3});
  ops::fill(cpu{}, x.view(), 1.0f);
  REQUIRE_THROWS_AS(l.backward(x.cview()), config_error);  // before any forward
  REQUIRE_THROWS_AS(l.forward(wrong.cview()), shape_error);
  REQUIRE_THROWS_WITH(l.forward(wrong.cview()), Catch::Contains("nn::lora_linear::forward") && Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_WITH(l.forward(empty.cview()), Catch::Contains("nn::lora_linear::forward") && Catch::Contains("[0, 3]"));
  l.forward(x.cview());
  REQUIRE_THROWS_AS(l.backward(dy_wrong.cview()), shape_error);
  REQUIRE_THROWS_WITH(l.backward(dy_wrong.cview()),
                      Catch::Contains("nn::lora_linear::backward") && Catch::Contains("[2, 4]") && Catch::Contains("[2, 3]"));
}
