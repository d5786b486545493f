#include <string>
#include <vector>


#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/nn/conv2d.hpp"
#include "support/fixtures.hpp"
#include "support/omp_threads.hpp"
#include "support/gradcheck.hpp"

using namespace cpdiff;

namespace {

// The definition, tap by tap: y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] x[n, c, r, t] with
// r = i*s - pad + p*d, t = j*s - pad + q*d; for an upstream dy the same taps read backwards:
// dx[n, c, r, t] += w[o, c, p, q] dy[n, o, i, j], dw[o, c, p, q] += dy[n, o, i, j] x[n, c, r, t], db[o] += dy.
struct direct_result {
  std::vector<double> y, dx, dw, db;
};
direct_result direct_conv2d(const_view<double> x, const_view<double> w, const_view<double> b, const_view<double> dy,
                            std::size_t s, std::size_t pad, std::size_t d) {
  const std::size_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), wd = x.dim(3), cout = w.dim(0), k = w.dim(2);
  const std::size_t oh = dy.dim(2), ow = dy.dim(3);
  direct_result res{std::vector<double>(dy.size()), std::vector<double>(x.size()), std::vector<double>(w.size()),
                    std::vector<double>(cout)};
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t o = 0; o < cout; ++o)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          const double g = dy(a, o, i, j);
          double acc = b(o);
          res.db[o] += g;
          for (std::size_t c = 0; c < cin; ++c)
            for (std::size_t p = 0; p < k; ++p)
              for (std::size_t q = 0; q < k; ++q) {
                const long r = long(i * s + p * d) - long(pad), t = long(j * s + q * d) - long(pad);
                if (r < 0 || r >= long(h) || t < 0 || t >= long(wd)) continue;
                const std::size_t xi = ((a * cin + c) * h + std::size_t(r)) * wd + std::size_t(t);
                acc += w(o, c, p, q) * x.data()[xi];
                res.dx[xi] += w(o, c, p, q) * g;
                res.dw[((o * cin + c) * k + p) * k + q] += g * x.data()[xi];
              }
          res.y[((a * cout + o) * oh + i) * ow + j] = acc;
        }
  return res;
}

}  // namespace

TEST_CASE("conv2d: gradcheck over stride, padding and dilation", "[nn][conv2d]") {
  parameter_store<double, cpu> ps;
  rng g{7};
  SECTION("k3 s1 p1") {
    nn::conv2d<2, 3, 3, double, cpu, 1, 1> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 5, 6});
  }
  SECTION("k3 s2 p0, odd sizes") {
    nn::conv2d<2, 2, 3, double, cpu, 2, 0> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 7, 8});
  }
  SECTION("k2 s2 p1 d2, no bias") {
    nn::conv2d<2, 3, 2, double, cpu, 2, 1, 2, false> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 2, 6, 5});
  }
  SECTION("k1 pointwise") {
    nn::conv2d<3, 2, 1, double> c(ps, "c", g);
    testing::gradcheck(c, ps, {2, 3, 3, 4});
  }
}

TEST_CASE("conv2d: matches the direct definition with column tiles that split rows, and threads",
          "[nn][conv2d]") {
  // 32 channels x 3x3 = 288 column rows: the 50x50 output positions take two column tiles, the first
  // ending inside an output row
  parameter_store<double, cpu> ps;
  rng g{11};
  nn::conv2d<32, 6, 3, double, cpu, 2, 1, 2> conv(ps, "c", g);
  for (int threads : {1, 3}) {
    testing::omp_threads scope(threads);
    for (std::size_t n : {1, 3}) {
      INFO(threads << " threads, batch " << n);
      const conv_geometry geo = conv2d_geometry(n, 32, 6, 101, 101, 3, 2, 1, 2);
      const std::size_t tile = ops::conv_detail::col_tile(geo);
      REQUIRE(tile < geo.col_cols());
      REQUIRE(tile % geo.out_w != 0);
      CHECK(ops::conv_detail::batch_threads(geo) == (threads == 3 && n == 3 ? 3u : 1u));
      tensor<double, cpu> x({n, 32, 101, 101});
      ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 5, n);
      const auto y = conv.forward(x.cview());
      REQUIRE(y.shape() == shape{n, 6, 50, 50});
      tensor<double, cpu> dy(y.shape());
      ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, 6, n);
      ops::fill(cpu{}, ps.grads(), 0.0);
      const auto dx = conv.backward(dy.cview());
      const auto ref = direct_conv2d(x.cview(), ps.value(conv.weight_id()), ps.value(conv.bias_id()), dy.cview(), 2, 1, 2);
      testing::require_close(y, const_view<double>(ref.y.data(), y.shape()), 1e-12, "y");
      testing::require_close(dx, const_view<double>(ref.dx.data(), x.shape()), 1e-12, "dx");
      testing::require_close(ps.grad(conv.weight_id()), const_view<double>(ref.dw.data(), {6, 32, 3, 3}), 1e-12, "dweight");
      testing::require_close(ps.grad(conv.bias_id()), const_view<double>(ref.db.data(), {6}), 1e-12, "dbias");
    }
  }
}

TEST_CASE("im2col on tiles: entries follow the definition and col2im is its adjoint", "[nn][conv2d][im2col]") {
  // A rectangular geometry the layers do not expose: every stride, padding and dilation differs per axis.
  conv_geometry geo;
  geo.n = 1, geo.c_in = 2, geo.c_out = 1, geo.in_h = 5, geo.in_w = 7;
  geo.k_h = 2, geo.k_w = 3, geo.stride_h = 2, geo.stride_w = 1, geo.pad_h = 1, geo.pad_w = 2, geo.dil_h = 1, geo.dil_w = 2;
  geo.out_h = conv_out_size(5, 2, 2, 1, 1), geo.out_w = conv_out_size(7, 3, 1, 2, 2);
  REQUIRE(geo.out_h == 3);
  REQUIRE(geo.out_w == 7);
  const std::size_t R = geo.col_rows(), P = geo.col_cols();
  tensor<double, cpu> x({2, 5, 7});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, 3, 0);
  for (std::size_t tile : {std::size_t(1), std::size_t(3), std::size_t(8), P}) {
    for (std::size_t p0 = 0; p0 < P; p0 += tile) {
      const std::size_t p1 = std::min(P, p0 + tile), m = p1 - p0;
      INFO("tile [" << p0 << ", " << p1 << ")");
      std::vector<double> col(R * m, -7.0);
      ops::im2col(cpu{}, geo, x.data(), col.data(), p0, p1);
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t pos = p0; pos < p1; ++pos) {
          const std::size_t c = r / 6, p = (r / 3) % 2, q = r % 3, i = pos / 7, j = pos % 7;
          const long ih = long(i * 2 + p) - 1, iw = long(j + q * 2) - 2;
          const double want = ih >= 0 && ih < 5 && iw >= 0 && iw < 7 ? x.view()(c, std::size_t(ih), std::size_t(iw)) : 0.0;
          REQUIRE(col[r * m + pos - p0] == want);
        }
      // <im2col(x), C> = <x, col2im(C)> for a random C on the same tile
      std::vector<double> cr(R * m), back(x.size(), 0.0);
      ops::fill_normal(cpu{}, tensor_view<double>(cr.data(), {R * m}), 0.0, 1.0, 4, p0);
      ops::col2im_add(cpu{}, geo, cr.data(), back.data(), p0, p1);
      double lhs = 0, rhs = 0;
      for (std::size_t e = 0; e < cr.size(); ++e) lhs += col[e] * cr[e];
      for (std::size_t e = 0; e < back.size(); ++e) rhs += x.data()[e] * back[e];
      REQUIRE(lhs == Approx(rhs).epsilon(1e-12));
    }
  }
}

TEST_CASE("conv2d: weight [Cout, Cin, K, K], init bound 1/sqrt(Cin*K*K)", "[nn][conv2d]") {
  STATIC_REQUIRE(layer<nn::conv2d<3, 16, 3>>);
  parameter_store<float, cpu> ps;
  rng g{5};
  nn::conv2d<3, 16, 3> conv(ps, "proj.0", g);
  REQUIRE(ps.entries()[0].name == "proj.0.weight");
  REQUIRE(ps.entries()[0].shape == shape{16, 3, 3, 3});
  REQUIRE(ps.entries()[1].name == "proj.0.bias");
  const float bound = 1.0f / std::sqrt(27.0f);
  float lo = 1, hi = -1;
  for (float v : conv.weight().span()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.9f * bound);
  CHECK(hi > 0.9f * bound);
}

TEST_CASE("conv2d: bad input is a shape_error naming the layer and the shape", "[nn][conv2d]") {
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::conv2d<1, 4, 3, float, cpu, 2> conv(ps, "c", g);
  const auto throws = [&](shape s, const std::string& what) {
    tensor<float, cpu> x(s);
    ops::fill(cpu{}, x.view(), 0.0f);
    INFO(what);
    REQUIRE_THROWS_AS(conv.forward(x.cview()), shape_error);
    REQUIRE_THROWS_WITH(conv.forward(x.cview()), Catch::Contains("nn::conv2d::forward") && Catch::Contains(s.str()));
  };
  throws({2, 3, 8, 8}, "wrong channels");
  throws({2, 1, 8}, "rank 3");
  throws({2, 1, 8, 2}, "narrower than the kernel");
  throws({2, 1, 2, 8}, "shorter than the kernel");
  throws({0, 1, 8, 8}, "empty batch");

  tensor<float, cpu> x({2, 1, 8, 8}), dy({2, 4, 3, 4});
  ops::fill(cpu{}, x.view(), 1.0f);
  ops::fill(cpu{}, dy.view(), 1.0f);
  REQUIRE(conv.forward(x.cview()).shape() == shape{2, 4, 3, 3});
  REQUIRE_THROWS_WITH(conv.backward(dy.cview()),
                      Catch::Contains("nn::conv2d::backward") && Catch::Contains("[2, 4, 3, 4]"));
}
