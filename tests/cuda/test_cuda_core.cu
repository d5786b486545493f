// The cuda backend's foundation against the CPU backend, which is the reference: device_buffer, host <->
// device copies, every element-wise kernel, GEMM in all transpose combinations, the Philox fills, the
// optimiser, diffusion, loss, concat, embedding, dropout and broadcast kernels, and one whole layer
// (nn::linear on both backends with the same parameters). Each case states its tolerance: "bit-equal"
// where both backends do the same IEEE operations in the same order, a few ulp where the GPU fuses
// multiply-adds or has its own exp / log / sin.
// Without a GPU the program prints "SKIPPED: no CUDA device" and exits 77 (CTest: Skipped).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/cpdiff_cuda.cuh"
// The CPU references, each included directly (the umbrella reaches some only through layers).
#include "cpdiff/backend/cpu/blas.hpp"
#include "cpdiff/backend/cpu/broadcast.hpp"
#include "cpdiff/backend/cpu/concat.hpp"
#include "cpdiff/backend/cpu/diffusion.hpp"
#include "cpdiff/backend/cpu/dropout.hpp"
#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/cpu/embedding.hpp"
#include "cpdiff/backend/cpu/losses.hpp"
#include "cpdiff/backend/cpu/optim.hpp"
#include "cpdiff/models/noise_mix.hpp"
#include "cpdiff/nn/activation_functors.hpp"
#include "cpdiff/nn/add.hpp"
#include "support/cuda_device.hpp"

using namespace cpdiff;
// `cuda` alone is ambiguous after `using namespace cpdiff`: CCCL declares a namespace ::cuda.
using cpdiff::gpu;

namespace {

constexpr std::uint64_t seed = 2024;

// n values in [lo, hi) from the CPU's Philox fill (stream picks independent data per use).
template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t stream, T lo = T(-1), T hi = T(1)) {
  tensor<T, cpu> t({n});
  ops::fill_uniform(cpu{}, t.view(), lo, hi, seed, stream);
  return std::vector<T>(t.data(), t.data() + n);
}

template <class T>
tensor<T, gpu> upload(const std::vector<T>& v, shape s) {
  REQUIRE(v.size() == s.size());
  tensor<T, gpu> d(s);
  ops::from_host(gpu{}, std::span<const T>(v), d.view());
  return d;
}
template <class T>
tensor<T, gpu> upload(const std::vector<T>& v) {
  return upload(v, shape{v.size()});
}
template <class T>
std::vector<T> download(const tensor<T, gpu>& d) {
  return ops::to_host(gpu{}, d.cview());
}
template <class T>
std::vector<T> download(const T* p, std::size_t n) {
  return ops::to_host(gpu{}, tensor_view<const T, device_space>(device_ptr<const T>(p), shape{n}));
}

// |got - want| <= atol + rtol |want| element-wise (NaN matches only NaN); reports the worst element.
template <class T>
void require_close(const std::vector<T>& got, const std::vector<T>& want, double rtol, double atol,
                   const std::string& what) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, worst_i = 0;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (std::isnan(g) && std::isnan(w)) continue;
    const double d = std::abs(g - w);
    if (!(d <= atol + rtol * std::abs(w))) {
      if (bad == 0 || d > worst || std::isnan(d)) {
        worst = d;
        worst_i = i;
      }
      ++bad;
    }
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements differ; worst at " << worst_i << ": gpu "
            << (got.empty() ? 0.0 : double(got[worst_i])) << " cpu " << (want.empty() ? 0.0 : double(want[worst_i]))
            << " (rtol " << rtol << ", atol " << atol << ")");
  CHECK(bad == 0);
}

// Same bits (the backends must agree exactly).
template <class T>
void require_bit_equal(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0 && bad++ == 0) first = i;
  INFO(what << ": " << bad << " of " << got.size() << " elements differ in their bits; first at " << first << ": gpu "
            << (bad ? double(got[first]) : 0.0) << " cpu " << (bad ? double(want[first]) : 0.0));
  CHECK(bad == 0);
}

template <class T>
tensor_view<T, host_space> hv(std::vector<T>& v, shape s) {
  return {v.data(), s};
}
template <class T>
tensor_view<const T, host_space> hcv(const std::vector<T>& v, shape s) {
  return {v.data(), s};
}

// A few ulp, relative and absolute (for results near zero after cancellation), for one fused
// multiply-add on the GPU against separate roundings on the CPU.
template <class T>
double loose_rtol() {
  return std::is_same_v<T, float> ? 2e-6 : 1e-13;
}
template <class T>
double loose_atol() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-15;
}

}  // namespace

TEST_CASE("cuda: device_buffer keeps contents on resize, zero-fills the tail, copies deeply", "[cuda][buffer]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  device_buffer<float> b(5);
  REQUIRE(b.size() == 5);
  REQUIRE(download(b.data(), 5) == std::vector<float>(5, 0.0f));
  const std::vector<float> v{1, 2, 3, 4, 5};
  ops::from_host(gpu{}, std::span<const float>(v), tensor_view<float, device_space>(device_ptr<float>(b.data()), {5}));

  b.resize(3);  // shrink: capacity kept
  REQUIRE(b.size() == 3);
  b.resize(4);  // regrow within capacity: element 3 is zero again, not the old 4
  REQUIRE(download(b.data(), 4) == std::vector<float>{1, 2, 3, 0});
  b.resize(100);  // reallocation keeps the values
  REQUIRE(b.capacity() >= 100);
  std::vector<float> want(100, 0.0f);
  want[0] = 1, want[1] = 2, want[2] = 3;
  REQUIRE(download(b.data(), 100) == want);

  device_buffer<float> c(b);  // deep copy
  REQUIRE(c.data() != b.data());
  ops::fill(gpu{}, tensor_view<float, device_space>(device_ptr<float>(b.data()), {100}), 7.0f);
  REQUIRE(download(c.data(), 100) == want);

  device_buffer<float> m(std::move(c));
  REQUIRE(c.data() == nullptr);
  REQUIRE(c.size() == 0);
  REQUIRE(download(m.data(), 100) == want);
  m = b;  // copy-assign
  REQUIRE(download(m.data(), 100) == std::vector<float>(100, 7.0f));
  m.clear();
  REQUIRE((m.size() == 0 && m.data() == nullptr));
}

TEST_CASE("cuda: parameter_store on the device zero-initialises and keeps earlier parameters", "[cuda][buffer]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  parameter_store<float, gpu> ps;
  const param_id a = ps.add("a", {2, 3});
  ops::fill(gpu{}, ps.value(a), 1.5f);
  const param_id b = ps.add("b", {4});
  const param_id c = ps.add("c", {1000});  // forces a reallocation
  REQUIRE(ps.find("a").index == a.index);
  REQUIRE(ops::to_host(gpu{}, tensor_view<const float, device_space>(ps.value(a))) == std::vector<float>(6, 1.5f));
  REQUIRE(ops::to_host(gpu{}, tensor_view<const float, device_space>(ps.value(b))) == std::vector<float>(4, 0.0f));
  REQUIRE(ops::to_host(gpu{}, tensor_view<const float, device_space>(ps.value(c))) == std::vector<float>(1000, 0.0f));
  REQUIRE(ops::to_host(gpu{}, tensor_view<const float, device_space>(ps.grads())) ==
          std::vector<float>(1010, 0.0f));
}

TEST_CASE("cuda: host <-> device copies, device copies, strided row copies", "[cuda][copy]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const auto v = random_vector<double>(37, 1);
  auto d = upload(v);
  REQUIRE(download(d) == v);

  tensor<double, gpu> e({37});
  ops::copy(gpu{}, d.cview(), e.view());
  REQUIRE(download(e) == v);

  tensor<double, gpu> wrong({36});
  REQUIRE_THROWS_AS(ops::copy(gpu{}, d.cview(), wrong.view()), shape_error);
  REQUIRE_THROWS_WITH(ops::from_host(gpu{}, std::span<const double>(v), wrong.view()),
                      Catch::Contains("ops::from_host") && Catch::Contains("[36]"));

  // copy_rows: a [4, 5] block with leading dimension 7 into leading dimension 6 (pad / crop).
  const auto src = random_vector<float>(4 * 7, 2);
  std::vector<float> dst_cpu(4 * 6, -1.0f);
  ops::copy_rows(cpu{}, src.data(), 7, dst_cpu.data(), 6, 4, 5);
  auto ds = upload(src);
  auto dd = upload(std::vector<float>(4 * 6, -1.0f));
  ops::copy_rows(gpu{}, ds.data(), 7, dd.data(), 6, 4, 5);
  require_bit_equal(download(dd), dst_cpu, "copy_rows");
  // source leading dimension 0: one row repeated (style_image_encoder's backward spreads d m this way)
  std::vector<float> rep_cpu(4 * 6, -1.0f);
  ops::copy_rows(cpu{}, src.data(), 0, rep_cpu.data(), 6, 4, 5);
  auto dr = upload(std::vector<float>(4 * 6, -1.0f));
  ops::copy_rows(gpu{}, ds.data(), 0, dr.data(), 6, 4, 5);
  require_bit_equal(download(dr), rep_cpu, "copy_rows, source leading dimension 0");

  // Empty transfers are no-ops.
  tensor<float, gpu> none({0});
  REQUIRE(ops::to_host(gpu{}, none.cview()).empty());
  ops::from_host(gpu{}, std::span<const float>(), none.view());
}

TEST_CASE("cuda: copy_parameters moves values between backends and checks the entries", "[cuda][copy]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  parameter_store<double, cpu> host;
  const param_id hw = host.add("fc.weight", {3, 2});
  const param_id hb = host.add("fc.bias", {3});
  ops::fill_uniform(cpu{}, host.value(hw), -1.0, 1.0, seed, 3);
  ops::fill_uniform(cpu{}, host.value(hb), -1.0, 1.0, seed, 4);
  const std::vector<double> values(host.values().data(), host.values().data() + host.size());

  parameter_store<double, gpu> dev;
  dev.add("fc.weight", {3, 2});
  dev.add("fc.bias", {3});
  copy_parameters(host, dev);
  REQUIRE(ops::to_host(gpu{}, std::as_const(dev).values()) == values);

  parameter_store<double, cpu> back;
  back.add("fc.weight", {3, 2});
  back.add("fc.bias", {3});
  copy_parameters(dev, back);
  REQUIRE(std::vector<double>(back.values().data(), back.values().data() + back.size()) == values);

  // double on the CPU -> float on the GPU converts.
  parameter_store<float, gpu> devf;
  devf.add("fc.weight", {3, 2});
  devf.add("fc.bias", {3});
  copy_parameters(host, devf);
  REQUIRE(ops::to_host(gpu{}, std::as_const(devf).values()) == std::vector<float>(values.begin(), values.end()));

  parameter_store<double, gpu> renamed, reshaped, shorter;
  renamed.add("fc.weight", {3, 2});
  renamed.add("fc.b", {3});
  reshaped.add("fc.weight", {2, 3});
  reshaped.add("fc.bias", {3});
  shorter.add("fc.weight", {3, 2});
  REQUIRE_THROWS_AS(copy_parameters(host, renamed), config_error);
  REQUIRE_THROWS_WITH(copy_parameters(host, renamed), Catch::Contains("fc.bias") && Catch::Contains("fc.b'"));
  REQUIRE_THROWS_AS(copy_parameters(host, reshaped), shape_error);
  REQUIRE_THROWS_WITH(copy_parameters(host, reshaped), Catch::Contains("[3, 2]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_AS(copy_parameters(host, shorter), config_error);
}

TEMPLATE_TEST_CASE("cuda: element-wise kernels match the CPU", "[cuda][elementwise]", float, double) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = TestType;
  const std::size_t rows = 33, cols = 17, n = rows * cols;
  const auto x = random_vector<T>(n, 10), y = random_vector<T>(n, 11), z = random_vector<T>(n, 12);
  const auto v = random_vector<T>(cols, 13);
  auto dx = upload(x, {rows, cols}), dy = upload(y, {rows, cols}), dz = upload(z, {rows, cols});
  auto dv = upload(v, {cols});
  const double rtol = loose_rtol<T>(), atol = loose_atol<T>();

  SECTION("fill, scale, axpy") {
    tensor<T, gpu> d({rows, cols});
    ops::fill(gpu{}, d.view(), T(0.25));
    REQUIRE(download(d) == std::vector<T>(n, T(0.25)));
    auto want = y;
    ops::scale(cpu{}, hv(want, {n}), T(-1.5));
    auto dd = upload(y);
    ops::scale(gpu{}, dd.view(), T(-1.5));
    require_bit_equal(download(dd), want, "scale");
    ops::axpy(cpu{}, T(0.75), hcv(x, {n}), hv(want, {n}));
    ops::axpy(gpu{}, T(0.75), dx.cview().reshape({n}), dd.view());
    require_close(download(dd), want, rtol, atol, "axpy");
  }
  SECTION("add_row_vector, add_column_sums (bit-equal: same additions in the same order)") {
    auto want = x;
    ops::add_row_vector(cpu{}, hv(want, {rows, cols}), hcv(v, {cols}));
    auto d = upload(x, {rows, cols});
    ops::add_row_vector(gpu{}, d.view(), dv.cview());
    require_bit_equal(download(d), want, "add_row_vector");

    auto sums = v;
    ops::add_column_sums(cpu{}, hcv(x, {rows, cols}), hv(sums, {cols}));
    auto ds = upload(v);
    ops::add_column_sums(gpu{}, dx.cview(), ds.view());
    require_bit_equal(download(ds), sums, "add_column_sums");
  }
  SECTION("transform with one, two and three inputs, through the library's functors") {
    std::vector<T> want(n);
    tensor<T, gpu> d({rows, cols});
    ops::transform(cpu{}, hcv(x, {n}), hv(want, {n}), nn::apply_value<nn::relu_fn>{});
    ops::transform(gpu{}, dx.cview(), d.view(), nn::apply_value<nn::relu_fn>{});
    require_bit_equal(download(d), want, "transform relu");

    ops::transform(cpu{}, hcv(x, {n}), hv(want, {n}), nn::apply_value<nn::sigmoid_fn>{});
    ops::transform(gpu{}, dx.cview(), d.view(), nn::apply_value<nn::sigmoid_fn>{});
    require_close(download(d), want, 4 * rtol, atol, "transform sigmoid");

    ops::transform(cpu{}, hcv(x, {n}), hcv(y, {n}), hv(want, {n}), nn::plus_fn{});
    ops::transform(gpu{}, dx.cview(), dy.cview(), d.view(), nn::plus_fn{});
    require_bit_equal(download(d), want, "transform plus");

    ops::transform(cpu{}, hcv(x, {n}), hcv(y, {n}), hv(want, {n}), models::convex_mix_fn<T>{T(0.3)});
    ops::transform(gpu{}, dx.cview(), dy.cview(), d.view(), models::convex_mix_fn<T>{T(0.3)});
    require_close(download(d), want, rtol, atol, "transform convex_mix");

    ops::transform(cpu{}, hcv(x, {n}), hcv(y, {n}), hcv(z, {n}), hv(want, {n}),
                   nn::apply_derivative<nn::tanh_fn>{});
    ops::transform(gpu{}, dx.cview(), dy.cview(), dz.cview(), d.view(), nn::apply_derivative<nn::tanh_fn>{});
    require_close(download(d), want, rtol, atol, "transform tanh derivative");
  }
  SECTION("sum, sum_squares, all_finite") {
    const double s_cpu = ops::sum(cpu{}, hcv(x, {n})), s_gpu = ops::sum(gpu{}, dx.cview());
    CHECK(s_gpu == Approx(s_cpu).epsilon(1e-12).margin(1e-12));
    const double q_cpu = ops::sum_squares(cpu{}, hcv(x, {n})), q_gpu = ops::sum_squares(gpu{}, dx.cview());
    CHECK(q_gpu == Approx(q_cpu).epsilon(1e-12));
    CHECK(ops::all_finite(gpu{}, dx.cview()));
    CHECK(ops::sum(gpu{}, tensor<T, gpu>({0}).cview()) == 0.0);
    CHECK(ops::all_finite(gpu{}, tensor<T, gpu>({0}).cview()));
    for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                  -std::numeric_limits<T>::infinity()}) {
      auto w = x;
      w[n - 2] = bad;
      CHECK_FALSE(ops::all_finite(gpu{}, upload(w).cview()));
    }
  }
}

TEMPLATE_TEST_CASE("cuda: gemm matches the CPU in every transpose combination", "[cuda][blas]", float, double) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = TestType;
  using ops::trans;
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-13, atol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  std::uint64_t stream = 100;
  // Leading dimensions wider than the rows (padding must stay untouched); beta 0 over a NaN-filled C
  // (BLAS semantics: C is not read), beta 0.5, alpha 0 and K 0 (C = beta C only).
  struct gemm_case {
    std::size_t M, N, K;
    T alpha, beta;
    bool nan_c;
  };
  const gemm_case cases[] = {{65, 47, 129, T(1), T(0), true}, {3, 5, 4, T(-0.5), T(0.5), false},
                             {1, 1, 300, T(2), T(1), false},  {8, 6, 0, T(1), T(0.5), false},
                             {7, 9, 5, T(0), T(2), false},    {16, 16, 16, T(1), T(0), false}};
  for (const auto& c : cases)
    for (trans ta : {trans::no, trans::yes})
      for (trans tb : {trans::no, trans::yes}) {
        const std::size_t ar = ta == trans::no ? c.M : c.K, ac = ta == trans::no ? c.K : c.M;
        const std::size_t br = tb == trans::no ? c.K : c.N, bc = tb == trans::no ? c.N : c.K;
        const std::size_t lda = ac + 2, ldb = bc + 1, ldc = c.N + 3;
        const auto A = random_vector<T>(ar * lda + 1, stream++), B = random_vector<T>(br * ldb + 1, stream++);
        auto C = random_vector<T>(c.M * ldc, stream++);
        if (c.nan_c) C.assign(C.size(), std::numeric_limits<T>::quiet_NaN());
        auto dA = upload(A), dB = upload(B), dC = upload(C);
        ops::gemm(cpu{}, ta, tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
        ops::gemm(gpu{}, ta, tb, c.M, c.N, c.K, c.alpha, dA.data(), lda, dB.data(), ldb, c.beta, dC.data(), ldc);
        require_close(download(dC), C, rtol, atol,
                      "gemm M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
                          (ta == trans::yes ? " A^T" : " A") + (tb == trans::yes ? " B^T" : " B"));
      }
}

TEST_CASE("cuda: matmul_precision::bf16 runs float GEMMs on bf16 tensor cores, within bf16's accuracy",
          "[cuda][blas][precision]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using ops::trans;
  const std::size_t M = 192, N = 160, K = 256;
  const auto A = random_vector<float>(M * K, 1600), B = random_vector<float>(K * N, 1601);
  std::vector<float> C(M * N, 0.f);
  ops::gemm(cpu{}, trans::no, trans::no, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N);
  auto dA = upload(A), dB = upload(B);
  tensor<float, gpu> dC({M * N});
  // max |gpu - cpu| over the result, relative to max |cpu|
  const auto rel_error = [&] {
    const auto g = download(dC);
    double worst = 0, ref = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      worst = std::max(worst, double(std::abs(g[i] - C[i])));
      ref = std::max(ref, double(std::abs(C[i])));
    }
    return worst / ref;
  };
  const auto run = [&] {
    ops::gemm(gpu{}, trans::no, trans::no, M, N, K, 1.f, dA.data(), K, dB.data(), N, 0.f, dC.data(), N);
  };
  run();
  const double fp32 = rel_error();
  double bf16 = 0;
  {
    const matmul_precision_scope scope(matmul_precision::bf16);
    run();
    bf16 = rel_error();
  }
  run();  // fp32 again after the scope
  const double after = rel_error();
  INFO("max relative error vs the CPU: fp32 " << fp32 << ", bf16 " << bf16 << ", fp32 after the scope " << after);
  CHECK(fp32 < 1e-5);
  CHECK(after == fp32);
  // bf16 keeps 8 significant bits: products of [-1, 1] inputs err by ~2^-9 each, their sum of 256 by ~1e-2.
  CHECK(bf16 > 1e-4);  // the bf16 path really ran (fp32 is ~1e-6)
  CHECK(bf16 < 3e-2);
}

TEMPLATE_TEST_CASE("cuda: Philox fills equal the CPU's (uniform bit for bit, normal but for rare 1-ulp ties)", "[cuda][rng]", float,
                   double) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = TestType;
  const std::size_t n = 100003;  // not a multiple of 4: the last Philox block is partial
  std::vector<T> want(n);
  tensor<T, gpu> d({n});
  // Widths 1 and 1/8 multiply exactly; +-1/sqrt(7) (nn::linear<7, .>'s init) does not, so it tells a
  // fused multiply-add from a separate multiply and add (both backends must fuse: backend/cpu/elementwise.hpp).
  const T b7 = T(1) / std::sqrt(T(7));
  for (auto [lo, hi] : {std::pair<T, T>{T(0), T(1)}, std::pair<T, T>{T(-0.3), T(0.7)},
                        std::pair<T, T>{T(-0.0625), T(0.0625)}, std::pair<T, T>{-b7, b7}}) {
    ops::fill_uniform(cpu{}, hv(want, {n}), lo, hi, seed, 77);
    ops::fill_uniform(gpu{}, d.view(), lo, hi, seed, 77);
    require_bit_equal(download(d), want, "fill_uniform");
  }
  // Normals: Box-Muller in double rounded to float once (core/rng.hpp), so the same values except where the
  // double results of the two math libraries straddle a rounding boundary: a few in 1e9 draws, 1 ulp each.
  const auto require_same_normals = [&](const std::vector<T>& got, const std::string& what) {
    std::size_t differ = 0;
    bool one_ulp = true;
    for (std::size_t i = 0; i < n; ++i)
      if (got[i] != want[i]) ++differ, one_ulp = one_ulp && std::nextafter(want[i], got[i]) == got[i];
    INFO(what << ": " << differ << " of " << n << " differ");
    CHECK(differ <= 2);
    CHECK(one_ulp);
  };
  ops::fill_normal(cpu{}, hv(want, {n}), T(0), T(1), seed, 78);
  ops::fill_normal(gpu{}, d.view(), T(0), T(1), seed, 78);
  require_same_normals(download(d), "fill_normal N(0, 1)");
  ops::fill_normal(cpu{}, hv(want, {n}), T(0.5), T(0.1), seed, 79);
  ops::fill_normal(gpu{}, d.view(), T(0.5), T(0.1), seed, 79);
  require_same_normals(download(d), "fill_normal N(0.5, 0.01)");
  // A different stream gives different numbers (the comparison above is not vacuous).
  ops::fill_uniform(gpu{}, d.view(), T(0), T(1), seed, 80);
  ops::fill_uniform(cpu{}, hv(want, {n}), T(0), T(1), seed, 77);
  CHECK(download(d) != want);
}

TEST_CASE("cuda: optimiser kernels match the CPU over several steps", "[cuda][optim]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = double;
  const std::size_t n = 1001;
  const double rtol = 1e-12, atol = 1e-14;
  auto p = random_vector<T>(n, 200), m = std::vector<T>(n, 0), v = std::vector<T>(n, 0);
  auto dp = upload(p), dm = upload(m), dv = upload(v);
  SECTION("adamw") {
    for (int step = 1; step <= 5; ++step) {
      const auto g = random_vector<T>(n, 300 + step, T(-0.01), T(0.01));
      auto dg = upload(g);
      const T bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
      ops::adamw_update(cpu{}, p.data(), g.data(), m.data(), v.data(), n, T(1e-3), T(0.9), T(0.999), T(1e-8), T(0.01),
                        bc1, bc2);
      ops::adamw_update(gpu{}, dp.data(), dg.data(), dm.data(), dv.data(), n, T(1e-3), T(0.9), T(0.999), T(1e-8),
                        T(0.01), bc1, bc2);
    }
    require_close(download(dp), p, rtol, atol, "adamw p");
    require_close(download(dm), m, rtol, atol, "adamw m");
    require_close(download(dv), v, rtol, atol, "adamw v");
  }
  SECTION("sgd: momentum, nesterov, weight decay; plain sgd without a buffer") {
    for (int step = 0; step < 4; ++step) {
      const auto g = random_vector<T>(n, 400 + step);
      auto dg = upload(g);
      ops::sgd_update(cpu{}, p.data(), g.data(), m.data(), n, T(0.1), T(0.9), T(0.1), T(1e-4), true, step == 0);
      ops::sgd_update(gpu{}, dp.data(), dg.data(), dm.data(), n, T(0.1), T(0.9), T(0.1), T(1e-4), true, step == 0);
      ops::sgd_update(cpu{}, p.data(), g.data(), static_cast<T*>(nullptr), n, T(0.05), T(0), T(0), T(0), false, false);
      ops::sgd_update(gpu{}, dp.data(), dg.data(), device_ptr<T>{}, n, T(0.05), T(0), T(0), T(0), false,
                      false);
    }
    require_close(download(dp), p, rtol, atol, "sgd p");
    require_close(download(dm), m, rtol, atol, "sgd momentum buffer");
  }
  SECTION("ema and swap") {
    auto shadow = random_vector<T>(n, 500);
    auto ds = upload(shadow);
    for (int step = 0; step < 3; ++step) {
      ops::ema_update(cpu{}, shadow.data(), p.data(), n, T(0.99));
      ops::ema_update(gpu{}, ds.data(), dp.data(), n, T(0.99));
    }
    require_close(download(ds), shadow, rtol, atol, "ema shadow");
    const auto gpu_shadow = download(ds), gpu_p = download(dp);
    ops::swap_buffers(gpu{}, ds.data(), dp.data(), n);
    require_bit_equal(download(dp), gpu_shadow, "swap_buffers: p holds the shadow");
    require_bit_equal(download(ds), gpu_p, "swap_buffers: the shadow holds p");
  }
  SECTION("adamw in float") {
    std::vector<float> pf(p.begin(), p.end()), mf(n, 0), vf(n, 0);
    auto dpf = upload(pf), dmf = upload(mf), dvf = upload(vf);
    for (int step = 1; step <= 3; ++step) {
      const auto g = random_vector<float>(n, 600 + step, -0.01f, 0.01f);
      auto dg = upload(g);
      const float bc1 = 1 - std::pow(0.9f, step), bc2 = 1 - std::pow(0.999f, step);
      ops::adamw_update(cpu{}, pf.data(), g.data(), mf.data(), vf.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1,
                        bc2);
      ops::adamw_update(gpu{}, dpf.data(), dg.data(), dmf.data(), dvf.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f,
                        bc1, bc2);
    }
    require_close(download(dpf), pf, 1e-5, 1e-6, "adamw p (float)");
  }
}

TEST_CASE("cuda: diffusion kernels match the CPU", "[cuda][diffusion]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = double;
  const std::size_t N = 6, D = 50, n = N * D;
  const auto x0 = random_vector<T>(n, 700, T(-2), T(2)), eps = random_vector<T>(n, 701, T(-2), T(2));
  const auto a = random_vector<T>(N, 702, T(0.1), T(1)), b = random_vector<T>(N, 703, T(0.1), T(1));
  auto dx0 = upload(x0, {N, D}), deps = upload(eps, {N, D}), da = upload(a), db = upload(b);

  SECTION("q_sample and the MSE objective") {
    std::vector<T> xt(n);
    ops::q_sample(cpu{}, hcv(x0, {N, D}), hcv(eps, {N, D}), hcv(a, {N}), hcv(b, {N}), hv(xt, {N, D}));
    tensor<T, gpu> dxt({N, D});
    ops::q_sample(gpu{}, dx0.cview(), deps.cview(), da.cview(), db.cview(), dxt.view());
    require_close(download(dxt), xt, 1e-14, 1e-15, "q_sample");

    std::vector<T> grad(n);
    const double loss = ops::ddpm_mse_and_grad(cpu{}, hcv(xt, {N, D}), hcv(eps, {N, D}), hv(grad, {N, D}));
    tensor<T, gpu> dgrad({N, D});
    const double dloss = ops::ddpm_mse_and_grad(gpu{}, dxt.cview(), deps.cview(), dgrad.view());
    CHECK(dloss == Approx(loss).epsilon(1e-12));
    require_close(download(dgrad), grad, 1e-12, 1e-15, "ddpm_mse_and_grad dpred");
  }
  SECTION("ddpm_step and ddim_step, with and without noise and clipping") {
    const T inf = std::numeric_limits<T>::infinity();
    const ops::ddpm_step_coefs<T> pc[] = {{1.2, 0.4, 0.7, 0.5, 0.1, 1.0, inf}, {1.0, 0.1, 0.9, 0.2, 0.0, inf, 1.5}};
    const ops::ddim_step_coefs<T> ic[] = {{1.3, 0.5, 0.77, 0.64, 0.9, 0.3, 0.05, 1.0, inf},
                                          {1.1, 0.2, 0.9, 0.43, 0.95, 0.31, 0.0, inf, inf}};
    for (const auto& c : pc) {
      auto x = x0;
      auto dx = upload(x0, {N, D});
      ops::ddpm_step(cpu{}, hv(x, {N, D}), hcv(eps, {N, D}), c, seed, 801);
      ops::ddpm_step(gpu{}, dx.view(), deps.cview(), c, seed, 801);
      // Noise is sigma * N(0,1) with the GPU's log / sin / cos: a few ulp of a float.
      require_close(download(dx), x, 1e-12, c.sigma * 5e-5 + 1e-14, "ddpm_step");
    }
    for (const auto& c : ic) {
      auto x = x0;
      auto dx = upload(x0, {N, D});
      ops::ddim_step(cpu{}, hv(x, {N, D}), hcv(eps, {N, D}), c, seed, 802);
      ops::ddim_step(gpu{}, dx.view(), deps.cview(), c, seed, 802);
      require_close(download(dx), x, 1e-12, c.sigma * 5e-5 + 1e-14, "ddim_step");
    }
  }
  SECTION("classifier-free guidance") {
    std::vector<T> out(n);
    ops::cfg_combine(cpu{}, hcv(x0, {N, D}), hcv(eps, {N, D}), T(3), hv(out, {N, D}));
    tensor<T, gpu> dout({N, D});
    ops::cfg_combine(gpu{}, dx0.cview(), deps.cview(), T(3), dout.view());
    require_close(download(dout), out, 1e-14, 1e-14, "cfg_combine");
    tensor<T, gpu> wrong({N, D + 1});
    REQUIRE_THROWS_AS(ops::cfg_combine(gpu{}, dx0.cview(), wrong.cview(), T(3), dout.view()), shape_error);
  }
}

TEMPLATE_TEST_CASE("cuda: loss kernels match the CPU", "[cuda][losses]", float, double) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = TestType;
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const std::size_t N = 9, C = 7, n = N * C;
  const auto pred = random_vector<T>(n, 900, T(-3), T(3)), target = random_vector<T>(n, 901, T(-3), T(3));
  auto dpred = upload(pred), dtarget = upload(target);

  const double mse = ops::mse_forward(cpu{}, pred.data(), target.data(), n);
  CHECK(ops::mse_forward(gpu{}, dpred.data(), dtarget.data(), n) == Approx(mse).epsilon(1e-12));
  std::vector<T> grad(n);
  ops::mse_backward(cpu{}, pred.data(), target.data(), grad.data(), n, T(0.5));
  tensor<T, gpu> dgrad({n});
  ops::mse_backward(gpu{}, dpred.data(), dtarget.data(), dgrad.data(), n, T(0.5));
  require_close(download(dgrad), grad, rtol, 1e-7, "mse_backward");

  std::vector<std::int64_t> labels{0, 6, 3, 3, 1, 5, 2, 4, 6};
  auto dlabels = upload(labels);
  CHECK(ops::find_invalid_label(gpu{}, dlabels.data(), N, C).index == -1);

  std::vector<T> prob(n);
  const double ce = ops::cross_entropy_forward(cpu{}, pred.data(), labels.data(), prob.data(), N, C);
  tensor<T, gpu> dprob({N, C});
  const double dce = ops::cross_entropy_forward(gpu{}, dpred.data(), dlabels.data(), dprob.data(), N, C);
  CHECK(dce == Approx(ce).epsilon(rtol));
  require_close(download(dprob), prob, rtol, 1e-7, "cross_entropy prob");
  std::vector<T> dlogits(n);
  ops::cross_entropy_backward(cpu{}, prob.data(), labels.data(), dlogits.data(), N, C, T(2));
  tensor<T, gpu> ddlogits({N, C});
  ops::cross_entropy_backward(gpu{}, dprob.data(), dlabels.data(), ddlogits.data(), N, C, T(2));
  require_close(download(ddlogits), dlogits, rtol, 1e-7, "cross_entropy_backward");

  // int32 labels, and the first invalid label (position and value) like the CPU.
  std::vector<std::int32_t> bad{0, 1, 2, 3, 4, -3, 9, 7, 1};
  auto dbad = upload(bad);
  const auto want = ops::find_invalid_label(cpu{}, bad.data(), N, C);
  const auto got = ops::find_invalid_label(gpu{}, dbad.data(), N, C);
  CHECK(want.index == 5);
  CHECK(got.index == want.index);
  CHECK(got.value == want.value);
  bad[5] = 0;
  auto dbad2 = upload(bad);
  const auto got2 = ops::find_invalid_label(gpu{}, dbad2.data(), N, C);
  CHECK(got2.index == 6);
  CHECK(got2.value == 9);
}

TEST_CASE("cuda: concat forward and backward are the CPU's copies", "[cuda][concat]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const std::size_t outer = 3, na = 2, nb = 4, inner = 5;
  const auto a = random_vector<float>(outer * na * inner, 1000), b = random_vector<float>(outer * nb * inner, 1001);
  std::vector<float> y(outer * (na + nb) * inner);
  ops::concat_forward(cpu{}, a.data(), b.data(), y.data(), outer, na, nb, inner);
  auto da = upload(a), db = upload(b);
  tensor<float, gpu> dy({y.size()});
  ops::concat_forward(gpu{}, da.data(), db.data(), dy.data(), outer, na, nb, inner);
  require_bit_equal(download(dy), y, "concat_forward");

  const auto g = random_vector<float>(y.size(), 1002);
  std::vector<float> ga(a.size()), gb(b.size());
  ops::concat_backward(cpu{}, g.data(), ga.data(), gb.data(), outer, na, nb, inner);
  auto dg = upload(g);
  tensor<float, gpu> dga({a.size()}), dgb({b.size()});
  ops::concat_backward(gpu{}, dg.data(), dga.data(), dgb.data(), outer, na, nb, inner);
  require_bit_equal(download(dga), ga, "concat_backward a");
  require_bit_equal(download(dgb), gb, "concat_backward b");
}

TEMPLATE_TEST_CASE("cuda: embedding gather and scatter-add (repeated indices) match the CPU bit for bit",
                   "[cuda][embedding]", std::int32_t, std::int64_t) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using I = TestType;
  const std::size_t num = 6, dim = 9;
  const std::vector<I> idx{3, 0, 5, 3, 3, 1, 5};
  const std::size_t n = idx.size();
  const auto table = random_vector<float>(num * dim, 1100);
  auto didx = upload(idx);
  auto dtable = upload(table);

  CHECK_FALSE(ops::find_index_out_of_range(gpu{}, didx.data(), n, num).has_value());
  std::vector<float> y(n * dim);
  ops::embedding_gather(cpu{}, idx.data(), n, table.data(), dim, y.data());
  tensor<float, gpu> dy({n * dim});
  ops::embedding_gather(gpu{}, didx.data(), n, dtable.data(), dim, dy.data());
  require_bit_equal(download(dy), y, "embedding_gather");

  const auto g = random_vector<float>(n * dim, 1101);
  auto grad = random_vector<float>(num * dim, 1102);  // scatter ADDS into existing gradients
  auto dgrad = upload(grad), dg = upload(g);
  ops::embedding_scatter_add(cpu{}, idx.data(), n, g.data(), dim, grad.data());
  ops::embedding_scatter_add(gpu{}, didx.data(), n, dg.data(), dim, dgrad.data());
  require_bit_equal(download(dgrad), grad, "embedding_scatter_add");

  const std::vector<I> bad{1, 2, 6, -1};
  auto dbad = upload(bad);
  const auto v = ops::find_index_out_of_range(gpu{}, dbad.data(), bad.size(), num);
  REQUIRE(v.has_value());
  CHECK(v->position == 2);
  CHECK(v->value == 6);
}

TEST_CASE("cuda: dropout drops exactly the CPU's elements", "[cuda][dropout]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const std::size_t n = 1001;
  const auto x = random_vector<float>(n, 1200);
  auto dx = upload(x);
  for (double p : {0.0, 0.3, 0.9}) {
    std::vector<float> y(n);
    ops::dropout_mask_apply(cpu{}, x.data(), y.data(), n, p, seed, 1201);
    tensor<float, gpu> dy({n});
    ops::dropout_mask_apply(gpu{}, dx.data(), dy.data(), n, p, seed, 1201);
    const auto got = download(dy);
    require_bit_equal(got, y, "dropout p = " + std::to_string(p));
    std::size_t zeros = 0;
    for (float v : got) zeros += v == 0.0f;
    if (p == 0.0) CHECK(zeros == 0);
    if (p > 0.0) CHECK(zeros > 0);
    // In place (y aliases x), as the layer's backward may do.
    auto inplace = upload(x);
    ops::dropout_mask_apply(gpu{}, inplace.data(), inplace.data(), n, p, seed, 1201);
    require_bit_equal(download(inplace), y, "dropout in place");
  }
}

TEST_CASE("cuda: broadcast over channels and its channel sums match the CPU bit for bit", "[cuda][broadcast]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const std::size_t n = 3, c = 4, s = 7;
  const auto x = random_vector<float>(n * c * s, 1300), e = random_vector<float>(n * s, 1301);
  std::vector<float> y(n * c * s);
  ops::add_over_channels(cpu{}, x.data(), e.data(), y.data(), n, c, s);
  auto dx = upload(x), de = upload(e);
  tensor<float, gpu> dy({y.size()});
  ops::add_over_channels(gpu{}, dx.data(), de.data(), dy.data(), n, c, s);
  require_bit_equal(download(dy), y, "add_over_channels");

  auto sums = random_vector<float>(n * s, 1302);
  auto dsums = upload(sums);
  ops::add_channel_sums(cpu{}, x.data(), sums.data(), n, c, s);
  ops::add_channel_sums(gpu{}, dx.data(), dsums.data(), n, c, s);
  require_bit_equal(download(dsums), sums, "add_channel_sums");
}

TEMPLATE_TEST_CASE("cuda: nn::linear on the GPU matches nn::linear on the CPU, forward and backward",
                   "[cuda][nn][linear]", float, double) {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using T = TestType;
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-13, atol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  parameter_store<T, cpu> hps;
  parameter_store<T, gpu> dps;
  rng gh{42}, gd{42};
  nn::linear<7, 5, T, cpu> h(hps, "fc", gh);
  nn::linear<7, 5, T, gpu> d(dps, "fc", gd);
  auto host_values = [&] { return std::vector<T>(hps.values().data(), hps.values().data() + hps.size()); };
  auto host_grads = [&] { return std::vector<T>(hps.grads().data(), hps.grads().data() + hps.size()); };

  // Same seed, same initial weights: the uniform fill is bit-equal across backends.
  require_bit_equal(ops::to_host(gpu{}, std::as_const(dps).values()), host_values(), "initial parameters");

  // New CPU weights, copied over, so the comparison below depends on copy_parameters.
  ops::fill_uniform(cpu{}, hps.values(), T(-0.5), T(0.5), seed, 1400);
  copy_parameters(hps, dps);
  require_bit_equal(ops::to_host(gpu{}, std::as_const(dps).values()), host_values(), "copied parameters");

  const std::size_t B = 4, L = 3;
  const auto x = random_vector<T>(B * L * 7, 1401), dy = random_vector<T>(B * L * 5, 1402);
  tensor<T, cpu> hx({B, L, 7}), hdy({B, L, 5});
  std::copy(x.begin(), x.end(), hx.data());
  std::copy(dy.begin(), dy.end(), hdy.data());
  auto dx_in = upload(x, {B, L, 7}), ddy = upload(dy, {B, L, 5});

  const auto yh = h.forward(hx.cview());
  const auto yd = d.forward(dx_in.cview());
  REQUIRE(yd.shape() == yh.shape());
  require_close(ops::to_host(gpu{}, yd), std::vector<T>(yh.data(), yh.data() + yh.size()), rtol, atol, "linear y");

  for (int pass = 0; pass < 2; ++pass) {  // the second pass checks that gradients accumulate
    const auto gxh = h.backward(hdy.cview());
    const auto gxd = d.backward(ddy.cview());
    REQUIRE(gxd.shape() == gxh.shape());
    require_close(ops::to_host(gpu{}, gxd), std::vector<T>(gxh.data(), gxh.data() + gxh.size()), rtol, atol,
                  "linear dx");
    require_close(ops::to_host(gpu{}, std::as_const(dps).grads()), host_grads(), rtol, atol, "linear dW, db");
  }

  tensor<T, gpu> wrong({2, 6});
  REQUIRE_THROWS_WITH(d.forward(wrong.cview()), Catch::Contains("nn::linear::forward") && Catch::Contains("[2, 6]"));
}

TEST_CASE("cuda: the backend runs on a given stream; failing CUDA calls throw device_error", "[cuda][backend]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  cudaStream_t s = nullptr;
  CPDIFF_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const gpu be = gpu{}.on(s);
  CHECK(be.stream == s);
  CHECK(gpu{}.stream == nullptr);
  tensor<float, gpu> t({1000});
  ops::fill_uniform(be, t.view(), 0.0f, 1.0f, seed, 1500);
  ops::scale(be, t.view(), 2.0f);
  std::vector<float> want(1000);
  ops::fill_uniform(cpu{}, hv(want, {1000}), 0.0f, 1.0f, seed, 1500);
  ops::scale(cpu{}, hv(want, {1000}), 2.0f);
  require_bit_equal(ops::to_host(be, t.cview()), want, "fill + scale on a non-blocking stream");
  CPDIFF_CUDA_CHECK(cudaStreamDestroy(s));

  REQUIRE_THROWS_AS(CPDIFF_CUDA_CHECK(cudaSetDevice(-1)), device_error);
  REQUIRE_THROWS_WITH(CPDIFF_CUDA_CHECK(cudaSetDevice(-1)),
                      Catch::Contains("cudaSetDevice(-1)") && Catch::Contains("cudaErrorInvalidDevice"));
  // The failure is not sticky: the device still works.
  CHECK(ops::sum(gpu{}, t.cview()) > 0.0);
}
