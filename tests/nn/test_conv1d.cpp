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

namespace {
// One conv1d<Cin, Cout, 3, double> at padding Pad with the Winograd F(4, 3) kernels forced, against the direct
// definition: y, dx, dw and db, for a batch of n samples of length len.
template <std::size_t Cin, std::size_t Cout, std::size_t Pad>
void check_winograd(std::size_t n, std::size_t len, std::uint64_t seed) {
  parameter_store<double, cpu> ps;
  rng g{seed};
  nn::conv1d<Cin, Cout, 3, double, cpu, 1, Pad> conv(ps, "c", g);
  conv.set_algorithm(conv_algorithm::winograd);
  conv_geometry geo = conv1d_geometry(n, Cin, Cout, len, 3, 1, Pad, 1);
  geo.algo = conv_algorithm::winograd;
  REQUIRE(ops::winograd::applies(geo));
  tensor<double, cpu> x({n, Cin, len});
  ops::fill_normal(cpu{}, x.view(), 0.0, 1.0, seed, 1);
  const auto y = conv.forward(x.cview());
  tensor<double, cpu> dy(y.shape());
  ops::fill_normal(cpu{}, dy.view(), 0.0, 1.0, seed, 2);
  ops::fill(cpu{}, ps.grads(), 0.0);
  const auto dx = conv.backward(dy.cview());
  const auto ref = direct_conv1d(x.cview(), ps.value(conv.weight_id()), ps.value(conv.bias_id()), dy.cview(), 1, Pad, 1);
  testing::require_close(y, const_view<double>(ref.y.data(), y.shape()), 1e-12, "y");
  testing::require_close(dx, const_view<double>(ref.dx.data(), x.shape()), 1e-12, "dx");
  testing::require_close(ps.grad(conv.weight_id()), const_view<double>(ref.dw.data(), {Cout, Cin, 3}), 1e-12, "dweight");
  testing::require_close(ps.grad(conv.bias_id()), const_view<double>(ref.db.data(), {Cout}), 1e-12, "dbias");
}
}  // namespace

TEST_CASE("conv1d: Winograd F(4, 3) matches the direct definition (padding 0-2, any length, threads)", "[nn][conv1d]") {
  for (int threads : {1, 3})
    for (std::size_t n : {1, 4})
      for (std::size_t len : {5, 16, 23}) {
        testing::omp_threads scope(threads);
        INFO(threads << " threads, batch " << n << ", length " << len);
        check_winograd<5, 7, 1>(n, len, 21 + len);
        check_winograd<3, 4, 0>(n, len, 22 + len);
        check_winograd<4, 3, 2>(n, len, 23 + len);
      }
  parameter_store<double, cpu> ps;
  rng g{3};
  nn::conv1d<2, 3, 3, double, cpu, 1, 1> c(ps, "c", g);
  c.set_algorithm(conv_algorithm::winograd);
  testing::gradcheck(c, ps, {2, 2, 9});
}

TEST_CASE("conv1d: Winograd is chosen for kernel 3, stride 1, with 32 channels or more", "[nn][conv1d]") {
  using ops::winograd::applies;
  CHECK(applies(conv1d_geometry(16, 64, 128, 980, 3, 1, 1, 1)));   // the p-diff U-Net's
  CHECK(!applies(conv1d_geometry(16, 1, 64, 980, 3, 1, 1, 1)));    // too few channels in
  CHECK(!applies(conv1d_geometry(16, 64, 16, 980, 3, 1, 1, 1)));   // too few out
  CHECK(!applies(conv1d_geometry(16, 64, 64, 980, 3, 2, 1, 1)));   // strided
  CHECK(!applies(conv1d_geometry(16, 64, 64, 980, 5, 1, 2, 1)));   // kernel 5
  CHECK(!applies(conv1d_geometry(16, 64, 64, 980, 3, 1, 2, 2)));   // dilated
  CHECK(!applies(conv1d_geometry(16, 64, 64, 980, 3, 1, 3, 1)));   // padding 3
  CHECK(!applies(conv1d_geometry(16, 64, 64, 10, 3, 1, 1, 1)));    // 10 outputs
  auto forced = conv1d_geometry(16, 64, 64, 980, 3, 1, 1, 1);
  forced.algo = conv_algorithm::gemm;
  CHECK(!applies(forced));
  forced = conv1d_geometry(1, 2, 2, 4, 3, 1, 0, 1);
  forced.algo = conv_algorithm::winograd;
  CHECK(applies(forced));
}

TEST_CASE("conv1d: Winograd in float stays within 2e-5 of the exact result at the U-Net's widths", "[nn][conv1d]") {
  // 256 -> 128 channels, length 117 (the latent's), batch 3: the float results against the double definition,
  // the worst error relative to the largest magnitude of each tensor, for Winograd and for im2col + GEMM
  parameter_store<float, cpu> ps;
  rng g{17};
  nn::conv1d<256, 128, 3, float, cpu, 1, 1> conv(ps, "c", g);
  tensor<float, cpu> x({3, 256, 117});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 4, 0);
  tensor<float, cpu> dy({3, 128, 117});
  ops::fill_normal(cpu{}, dy.view(), 0.0f, 1.0f, 5, 0);
  const auto as_double = [](tensor_view<const float, host_space> v) {
    tensor<double, cpu> d(v.shape());
    for (std::size_t i = 0; i < v.size(); ++i) d.data()[i] = v.data()[i];
    return d;
  };
  const auto xd = as_double(x.cview()), dyd = as_double(dy.cview());
  const auto wd = as_double(ps.value(conv.weight_id())), bd = as_double(ps.value(conv.bias_id()));
  const auto ref = direct_conv1d(xd.cview(), wd.cview(), bd.cview(), dyd.cview(), 1, 1, 1);
  const auto worst = [](tensor_view<const float, host_space> got, const std::vector<double>& want) {
    double err = 0, top = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      err = std::max(err, std::abs(double(got.data()[i]) - want[i]));
      top = std::max(top, std::abs(want[i]));
    }
    return err / top;
  };
  for (conv_algorithm a : {conv_algorithm::automatic, conv_algorithm::gemm}) {
    conv.set_algorithm(a);
    REQUIRE(ops::winograd::applies([&] { auto geo = conv1d_geometry(3, 256, 128, 117, 3, 1, 1, 1); geo.algo = a; return geo; }()) ==
            (a == conv_algorithm::automatic));
    const auto y = conv.forward(x.cview());
    ops::fill(cpu{}, ps.grads(), 0.0f);
    const auto dx = conv.backward(dy.cview());
    const double ey = worst(y, ref.y), edx = worst(dx, ref.dx), edw = worst(ps.grad(conv.weight_id()), ref.dw);
    INFO((a == conv_algorithm::automatic ? "winograd" : "gemm") << ": y " << ey << ", dx " << edx << ", dw " << edw);
    CHECK(ey < 2e-5);
    CHECK(edx < 2e-5);
    CHECK(edw < 2e-5);
    std::cout << "conv1d 256 -> 128, k 3, float, worst error / largest magnitude, "
              << (a == conv_algorithm::automatic ? "winograd" : "gemm") << ": y " << ey << ", dx " << edx << ", dw "
              << edw << "\n";
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
