#include <string>
#include <vector>


#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/conv_transpose1d.hpp"
#include "support/fixtures.hpp"
#include "support/omp_threads.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {

// The definition, tap by tap: y[n, o, pos] += w[c, o, k] x[n, c, l] with pos = l*s - p + k*d, then + b[o];
// for an upstream dy the same taps read backwards: dx[n, c, l] += w[c, o, k] dy[n, o, pos],
// dw[c, o, k] += x[n, c, l] dy[n, o, pos], db[o] += sum dy[n, o, :].
struct direct_result {
  std::vector<double> y, dx, dw, db;
};
direct_result direct_conv_transpose1d(const_view<double> x, const_view<double> w, const_view<double> b,
                                      const_view<double> dy, std::size_t s, std::size_t p, std::size_t d) {
  const std::size_t n = x.dim(0), cin = x.dim(1), len = x.dim(2), cout = w.dim(1), k = w.dim(2), lout = dy.dim(2);
  direct_result r{std::vector<double>(n * cout * lout), std::vector<double>(x.size()), std::vector<double>(w.size()),
                  std::vector<double>(cout)};
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t o = 0; o < cout; ++o) {
      for (std::size_t l = 0; l < lout; ++l) r.y[(i * cout + o) * lout + l] = b(o), r.db[o] += dy(i, o, l);
      for (std::size_t c = 0; c < cin; ++c)
        for (std::size_t l = 0; l < len; ++l)
          for (std::size_t t = 0; t < k; ++t) {
            const long pos = long(l * s + t * d) - long(p);
            if (pos < 0 || pos >= long(lout)) continue;
            const double g = dy(i, o, std::size_t(pos));
            r.y[(i * cout + o) * lout + std::size_t(pos)] += w(c, o, t) * x(i, c, l);
            r.dx[(i * cin + c) * len + l] += w(c, o, t) * g;
            r.dw[(c * cout + o) * k + t] += x(i, c, l) * g;
          }
    }
  return r;
}

}  // namespace

TEST_CASE("conv_transpose1d: output length follows PyTorch's formula", "[nn][conv_transpose1d]") {
  // (L - 1)*S - 2P + D*(K - 1) + OP + 1
  STATIC_REQUIRE(nn::conv_transpose1d<1, 1, 3>::out_length(6) == 8);
  STATIC_REQUIRE(nn::conv_transpose1d<1, 1, 3, float, cpu, 2, 1, 1>::out_length(6) == 12);
  STATIC_REQUIRE(nn::conv_transpose1d<1, 1, 5, float, cpu, 5>::out_length(117) == 585);
  STATIC_REQUIRE(nn::conv_transpose1d<1, 1, 3, float, cpu, 1, 0, 1, 2>::out_length(4) == 9);
  STATIC_REQUIRE(nn::conv_transpose1d<1, 1, 1, float, cpu, 1, 1>::out_length(2) == 0);
}

TEST_CASE("conv_transpose1d: gradcheck over stride, padding, output padding and dilation",
          "[nn][conv_transpose1d]") {
  parameter_store<double, cpu> ps;
  rng g{7};
  SECTION("k3 s1 p0") {
    nn::conv_transpose1d<2, 3, 3, double> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 6});
  }
  SECTION("k3 s2 p1 op1") {
    nn::conv_transpose1d<2, 3, 3, double, cpu, 2, 1, 1> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 6});
  }
  SECTION("k5 s5 p0 (the autoencoder's unfold)") {
    nn::conv_transpose1d<4, 2, 5, double, cpu, 5> c(ps, "c", g);
    testing::gradcheck(c, ps, {3, 4, 3});
  }
  SECTION("k3 s1 p1 op1 d2 (output padding below the dilation)") {
    nn::conv_transpose1d<2, 2, 3, double, cpu, 1, 1, 1, 2> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 5});
  }
  SECTION("k2 s3 p2, no bias (gaps between the taps)") {
    nn::conv_transpose1d<3, 2, 2, double, cpu, 3, 2, 0, 1, false> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 3, 5});
  }
  SECTION("k1 pointwise") {
    nn::conv_transpose1d<3, 2, 1, double> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 3, 4});
  }
}

TEST_CASE("conv_transpose1d: matches the direct definition with several column tiles and threads",
          "[nn][conv_transpose1d]") {
  // 64 output channels x kernel 5 = 320 column rows: the 2000 input positions take two column tiles
  parameter_store<double, cpu> ps;
  rng g{11};
  nn::conv_transpose1d<12, 64, 5, double, cpu, 3, 2, 1, 2> conv(ps, "c", g);
  for (int threads : {1, 3}) {
    testing::omp_threads scope(threads);
    for (std::size_t n : {1, 2, 3}) {
      INFO(threads << " threads, batch " << n);
      const conv_geometry geo = conv_transpose1d_geometry(n, 12, 64, 2000, 5, 3, 2, 1, 2);
      REQUIRE(ops::conv_detail::col_tile(geo) < geo.col_cols());
      CHECK(ops::conv_detail::batch_threads(geo) == (threads == 3 && n == 3 ? 3u : 1u));
      tensor<double, cpu> x({n, 12, 2000});
      ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, n);
      const auto y = conv.forward(x.cview());
      REQUIRE(y.shape() == shape{n, 64, decltype(conv)::out_length(2000)});
      tensor<double, cpu> dy(y.shape());
      ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 6, n);
      ops::fill(cpu{}, ps.grads(), 0.0);
      const auto dx = conv.backward(dy.cview());
      const auto ref = direct_conv_transpose1d(x.cview(), ps.value(conv.weight_id()), ps.value(conv.bias_id()),
                                               dy.cview(), 3, 2, 2);
      testing::require_close(y, const_view<double>(ref.y.data(), y.shape()), 1e-12, "y");
      testing::require_close(dx, const_view<double>(ref.dx.data(), x.shape()), 1e-12, "dx");
      testing::require_close(ps.grad(conv.weight_id()), const_view<double>(ref.dw.data(), {12, 64, 5}), 1e-12, "dweight");
      testing::require_close(ps.grad(conv.bias_id()), const_view<double>(ref.db.data(), {64}), 1e-12, "dbias");
    }
  }
}

TEST_CASE("conv_transpose1d: weight [Cin, Cout, K], init bound 1/sqrt(Cout*K) as PyTorch computes fan-in",
          "[nn][conv_transpose1d]") {
  STATIC_REQUIRE(layer<nn::conv_transpose1d<16, 4, 5, float, cpu, 5>>);
  parameter_store<float, cpu> ps;
  rng g{5};
  nn::conv_transpose1d<16, 4, 5, float, cpu, 5> conv(ps, "dec.up", g);
  REQUIRE(ps.entries()[0].name == "dec.up.weight");
  REQUIRE(ps.entries()[0].shape == shape{16, 4, 5});
  REQUIRE(ps.entries()[1].name == "dec.up.bias");
  REQUIRE(ps.entries()[1].shape == shape{4});
  const float bound = 1.0f / std::sqrt(20.0f);  // not 1/sqrt(16*5)
  float lo = 1, hi = -1;
  for (float v : conv.weight().span()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.9f * bound);
  CHECK(hi > 0.9f * bound);
  for (float v : conv.bias().span()) CHECK(std::abs(v) <= bound);
}

TEST_CASE("conv_transpose1d: frozen parameters get no gradient", "[nn][conv_transpose1d]") {
  parameter_store<double, cpu> ps;
  rng g{2};
  nn::conv_transpose1d<2, 3, 3, double, cpu, 2> conv(ps, "c", g, /*trainable=*/false);
  tensor<double, cpu> x({2, 2, 4}), dy({2, 3, 9});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 1, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 1, 1);
  ops::fill(cpu{}, ps.grads(), 0.0);
  conv.forward(x.cview());
  const auto dx = conv.backward(dy.cview());
  CHECK(ops::sum_squares<double>(cpu{}, ps.grads()) == 0.0);
  CHECK(ops::sum_squares(cpu{}, dx) > 0.0);
}

TEST_CASE("conv_transpose1d: bad input is a shape_error naming the layer and the shape", "[nn][conv_transpose1d]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::conv_transpose1d<4, 4, 5, float, cpu, 5> conv(ps, "c", g);
  const auto throws = [&](shape s, const std::string& what) {
    tensor<float, cpu> x(s);
    ops::fill(cpu{}, x.view(), 0.0f);
    INFO(what);
    REQUIRE_THROWS_AS(conv.forward(x.cview()), shape_error);
    REQUIRE_THROWS_WITH(conv.forward(x.cview()),
                        Catch::Contains("nn::conv_transpose1d::forward") && Catch::Contains(s.str()));
  };
  throws({2, 3, 20}, "wrong channels");
  throws({2, 4}, "rank 2");
  throws({2, 4, 3, 1}, "rank 4");
  throws({0, 4, 3}, "empty batch");
  throws({2, 4, 0}, "empty length");

  // Padding that leaves no output: (1 - 1)*1 - 2*1 + 0 + 1 = -1
  nn::conv_transpose1d<1, 1, 1, float, cpu, 1, 1> shrink(ps, "s", g);
  tensor<float, cpu> one({1, 1, 2});
  REQUIRE_THROWS_WITH(shrink.forward(one.cview()),
                      Catch::Contains("nn::conv_transpose1d::forward") && Catch::Contains("[1, 1, 2]"));

  tensor<float, cpu> x({2, 4, 3}), dy({2, 4, 14});
  ops::fill(cpu{}, x.view(), 1.0f);
  ops::fill(cpu{}, dy.view(), 1.0f);
  REQUIRE_THROWS_WITH(conv.backward(dy.cview()), Catch::Contains("nn::conv_transpose1d::backward"));
  REQUIRE(conv.forward(x.cview()).shape() == shape{2, 4, 15});
  REQUIRE_THROWS_WITH(conv.backward(dy.cview()), Catch::Contains("nn::conv_transpose1d::backward") &&
                                                     Catch::Contains("[2, 4, 14]") && Catch::Contains("[2, 4, 15]"));
}
