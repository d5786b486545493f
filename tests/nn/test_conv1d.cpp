#include <string>
#include <vector>


#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "support/fixtures.hpp"
#include "support/omp_threads.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {

// The definition, tap by tap: y[n, o, l] = b[o] + sum_{c, k} w[o, c, k] x[n, c, pos], pos = l*s - p + k*d,
// and for an upstream dy the same taps read backwards: dx[n, c, pos] += w[o, c, k] dy[n, o, l],
// dw[o, c, k] += dy[n, o, l] x[n, c, pos], db[o] += dy[n, o, l].
struct direct_result {
  std::vector<double> y, dx, dw, db;
};
direct_result direct_conv1d(const_view<double> x, const_view<double> w, const_view<double> b,
                            const_view<double> dy, std::size_t s, std::size_t p, std::size_t d) {
  const std::size_t n = x.dim(0), cin = x.dim(1), len = x.dim(2), cout = w.dim(0), k = w.dim(2), lout = dy.dim(2);
  direct_result r{std::vector<double>(n * cout * lout), std::vector<double>(x.size()), std::vector<double>(w.size()),
                  std::vector<double>(cout)};
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t o = 0; o < cout; ++o)
      for (std::size_t l = 0; l < lout; ++l) {
        const double g = dy(i, o, l);
        double acc = b(o);
        r.db[o] += g;
        for (std::size_t c = 0; c < cin; ++c)
          for (std::size_t t = 0; t < k; ++t) {
            const long pos = long(l * s + t * d) - long(p);
            if (pos < 0 || pos >= long(len)) continue;
            acc += w(o, c, t) * x(i, c, std::size_t(pos));
            r.dx[(i * cin + c) * len + std::size_t(pos)] += w(o, c, t) * g;
            r.dw[(o * cin + c) * k + t] += g * x(i, c, std::size_t(pos));
          }
        r.y[(i * cout + o) * lout + l] = acc;
      }
  return r;
}

}  // namespace

TEST_CASE("conv1d: gradcheck over stride, padding and dilation", "[nn][conv1d]") {
  parameter_store<double, cpu> ps;
  rng g{7};
  SECTION("k3 s1 p1") {
    nn::conv1d<2, 3, 3, double, cpu, 1, 1> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 9});
  }
  SECTION("k3 s2 p0, length not a multiple of the stride") {
    nn::conv1d<2, 3, 3, double, cpu, 2, 0> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 10});
  }
  SECTION("k3 d2 p2") {
    nn::conv1d<2, 3, 3, double, cpu, 1, 2, 2> c(ps, "c", g);
    testing::gradcheck(c, ps, {3, 2, 8});
  }
  SECTION("k5 s5 p0 (the autoencoder's fold)") {
    nn::conv1d<4, 2, 5, double, cpu, 5, 0> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 4, 17});
  }
  SECTION("k4 s3 p2 d2, no bias") {
    nn::conv1d<3, 2, 4, double, cpu, 3, 2, 2, false> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 3, 13});
  }
  SECTION("k1 pointwise (no im2col)") {
    nn::conv1d<3, 4, 1, double> c(ps, "c", g);
    testing::gradcheck(c, ps, {3, 3, 5});
  }
  SECTION("single sample") {
    nn::conv1d<2, 2, 3, double, cpu, 1, 1> c(ps, "c", g);
    testing::gradcheck(c, ps, {1, 2, 6});
  }
}

TEST_CASE("conv1d: matches the direct definition with several column tiles and threads", "[nn][conv1d]") {
  // 64 channels x kernel 5 = 320 column rows: the 2500 output positions take two column tiles
  parameter_store<double, cpu> ps;
  rng g{11};
  nn::conv1d<64, 12, 5, double, cpu, 2, 3, 2> conv(ps, "c", g);
  for (int threads : {1, 3}) {
    testing::omp_threads scope(threads);
    for (std::size_t n : {1, 2, 3}) {
      INFO(threads << " threads, batch " << n);
      const conv_geometry geo = conv1d_geometry(n, 64, 12, 5001, 5, 2, 3, 2);
      REQUIRE(ops::conv_detail::col_tile(geo) < geo.col_cols());
      // whole samples per thread only when there are as many samples as threads (else the GEMM's threads)
      CHECK(ops::conv_detail::batch_threads(geo) == (threads == 3 && n == 3 ? 3u : 1u));
      tensor<double, cpu> x({n, 64, 5001});
      ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, n);
      const auto y = conv.forward(x.cview());
      REQUIRE(y.shape() == shape{n, 12, 2500});
      tensor<double, cpu> dy(y.shape());
      ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 6, n);
      ops::fill(cpu{}, ps.grads(), 0.0);
      const auto dx = conv.backward(dy.cview());
      const auto ref = direct_conv1d(x.cview(), ps.value(conv.weight_id()), ps.value(conv.bias_id()), dy.cview(), 2, 3, 2);
      testing::require_close(y, const_view<double>(ref.y.data(), y.shape()), 1e-12, "y");
      testing::require_close(dx, const_view<double>(ref.dx.data(), x.shape()), 1e-12, "dx");
      testing::require_close(ps.grad(conv.weight_id()), const_view<double>(ref.dw.data(), {12, 64, 5}), 1e-12, "dweight");
      testing::require_close(ps.grad(conv.bias_id()), const_view<double>(ref.db.data(), {12}), 1e-12, "dbias");
    }
  }
}

TEST_CASE("conv1d: small batches of small samples stay on one thread; many take them all", "[nn][conv1d]") {
  testing::omp_threads scope(3);
  CHECK(ops::conv_detail::batch_threads(conv1d_geometry(2, 2, 3, 9, 3, 1, 1, 1)) == 1);  // too little work
  CHECK(ops::conv_detail::batch_threads(conv1d_geometry(8, 4, 4, 3000, 5, 1, 1, 1)) == 3);
  CHECK(ops::conv_detail::batch_threads(conv1d_geometry(2, 4, 4, 3000, 5, 1, 1, 1)) == 2);  // small samples
  // a 4-sample float batch of the same layer: samples in parallel, each thread with its own column tile
  parameter_store<float, cpu> ps;
  rng g{4};
  nn::conv1d<4, 4, 5, float, cpu, 1, 1> conv(ps, "c", g);
  tensor<float, cpu> x({4, 4, 3000});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 9, 0);
  const auto y = conv.forward(x.cview());
  // sample 2 alone (one sample: no threads over the batch) gives the same numbers
  tensor<float, cpu> x2({1, 4, 3000});
  std::copy(x.data() + 2 * 12000, x.data() + 3 * 12000, x2.data());
  std::vector<float> y_all(y.data() + 2 * 4 * 2998, y.data() + 3 * 4 * 2998);
  const auto y2 = conv.forward(x2.cview());
  REQUIRE(y2.size() == y_all.size());
  float worst = 0;
  for (std::size_t i = 0; i < y_all.size(); ++i) worst = std::max(worst, std::abs(y2.data()[i] - y_all[i]));
  CHECK(worst <= 1e-5f);
}

TEST_CASE("conv1d: default init is U(-1/sqrt(Cin*K), 1/sqrt(Cin*K))", "[nn][conv1d]") {
  STATIC_REQUIRE(layer<nn::conv1d<8, 16, 5>>);
  STATIC_REQUIRE(layer<nn::conv1d<2, 3, 3, double, cpu, 2, 1, 2, false>>);
  parameter_store<float, cpu> ps;
  rng g{5};
  nn::conv1d<8, 16, 5> conv(ps, "enc.conv", g);
  REQUIRE(ps.entries()[0].name == "enc.conv.weight");
  REQUIRE(ps.entries()[0].shape == shape{16, 8, 5});
  REQUIRE(ps.entries()[1].name == "enc.conv.bias");
  const float bound = 1.0f / std::sqrt(40.0f);
  float lo = 1, hi = -1;
  for (float v : conv.weight().span()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.9f * bound);  // 640 draws fill the interval
  CHECK(hi > 0.9f * bound);
  for (float v : conv.bias().span()) CHECK(std::abs(v) <= bound);
}

TEST_CASE("conv1d: frozen parameters get no gradient", "[nn][conv1d]") {
  parameter_store<double, cpu> ps;
  rng g{2};
  nn::conv1d<2, 3, 3, double, cpu, 1, 1> conv(ps, "c", g, /*trainable=*/false);
  tensor<double, cpu> x({2, 2, 7}), dy({2, 3, 7});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 1, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 1, 1);
  ops::fill(cpu{}, ps.grads(), 0.0);
  conv.forward(x.cview());
  const auto dx = conv.backward(dy.cview());
  CHECK(ops::sum_squares<double>(cpu{}, ps.grads()) == 0.0);
  CHECK(ops::sum_squares(cpu{}, dx) > 0.0);
}

TEST_CASE("conv1d: bad input is a shape_error naming the layer and the shape", "[nn][conv1d]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::conv1d<4, 4, 5, float, cpu, 5> conv(ps, "c", g);
  const auto throws = [&](shape s, const std::string& what) {
    tensor<float, cpu> x(s);
    ops::fill(cpu{}, x.view(), 0.0f);
    INFO(what);
    REQUIRE_THROWS_AS(conv.forward(x.cview()), shape_error);
    REQUIRE_THROWS_WITH(conv.forward(x.cview()), Catch::Contains("nn::conv1d::forward") && Catch::Contains(s.str()));
  };
  throws({2, 3, 20}, "wrong channels");
  throws({2, 4}, "rank 2");
  throws({2, 4, 20, 1}, "rank 4");
  throws({2, 4, 4}, "shorter than the kernel");
  throws({0, 4, 20}, "empty batch");
  throws({2, 4, 0}, "empty length");

  tensor<float, cpu> x({2, 4, 20}), dy({2, 4, 3});
  ops::fill(cpu{}, x.view(), 1.0f);
  ops::fill(cpu{}, dy.view(), 1.0f);
  REQUIRE_THROWS_WITH(conv.backward(dy.cview()), Catch::Contains("nn::conv1d::backward"));  // before forward
  REQUIRE(conv.forward(x.cview()).shape() == shape{2, 4, 4});
  REQUIRE_THROWS_WITH(conv.backward(dy.cview()),
                      Catch::Contains("nn::conv1d::backward") && Catch::Contains("[2, 4, 3]") &&
                          Catch::Contains("[2, 4, 4]"));
}
