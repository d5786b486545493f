// The heavy layers on the GPU against the same layers on the CPU (the reference backend), in float:
// convolutions (both GPU algorithms, and the GEMM path in several chunks), pooling, every norm, and the
// whole p-diff autoencoder and U-Net. Each case builds the layer twice, copies the CPU parameters into
// the GPU store, feeds both the same input, and compares the output, dx and every parameter gradient:
//   max |gpu - cpu| <= 1e-4 * max |cpu|   over each tensor (see require_close; the whole models allow
//   more only where float itself cannot do better, measured by the CPU model in double: require_close_model).
// Without a device the program prints "SKIPPED: no CUDA device" and exits 77 (CTest: Skipped).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/cpdiff_cuda.cuh"
#include "cpdiff/models/conv_block.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "cpdiff/nn/avg_pool2d.hpp"
#include "cpdiff/nn/batch_norm1d.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "cpdiff/nn/conv2d.hpp"
#include "cpdiff/nn/conv_transpose1d.hpp"
#include "cpdiff/nn/global_avg_pool.hpp"
#include "cpdiff/nn/group_norm.hpp"
#include "cpdiff/nn/instance_norm1d.hpp"
#include "cpdiff/nn/layer_norm.hpp"
#include "support/close_check.hpp"
#include "support/cuda_device.hpp"

namespace {

// Not `using namespace cpdiff`: libcu++'s global namespace ::cuda would make `cuda` ambiguous.
using cpdiff::conv_algorithm;
using cpdiff::cpu;
using cpdiff::shape;
using cpdiff::gpu;
template <class T>
using host_tensor = cpdiff::tensor<T, cpu>;
template <class T>
using device_tensor = cpdiff::tensor<T, gpu>;
using hcview = cpdiff::tensor_view<const float, cpdiff::host_space>;
using dcview = cpdiff::tensor_view<const float, cpdiff::device_space>;

constexpr double rel_tol = 1e-4;
constexpr conv_algorithm all_algorithms[] = {conv_algorithm::automatic, conv_algorithm::gemm, conv_algorithm::direct};

const char* algorithm_name(conv_algorithm a) {
  return a == conv_algorithm::gemm ? "gemm" : a == conv_algorithm::direct ? "direct" : "automatic";
}

host_tensor<float> random_host(shape s, std::uint64_t seed, float mean = 0.f, float stddev = 1.f) {
  host_tensor<float> t(s);
  cpdiff::ops::fill_normal(cpu{}, t.view(), mean, stddev, seed, 0);
  return t;
}

template <class T>
device_tensor<T> upload(const host_tensor<T>& h) {
  device_tensor<T> d(h.shape());
  cpdiff::ops::from_host(gpu{}, std::span<const T>(h.data(), h.size()), d.view());
  return d;
}

std::vector<float> download(dcview v) { return cpdiff::ops::to_host(gpu{}, v); }

// The GPU result against the CPU's: max abs difference within rel_tol of the CPU tensor's max abs value.
// Also requires a non-zero reference (a comparison of two zero tensors would prove nothing).
void require_close(const std::vector<float>& got, const float* want, std::size_t n, const std::string& what) {
  cpdiff::testing::require_close_to(got, want, n, what, rel_tol);
}
void require_close(dcview got, hcview want, const std::string& what) {
  INFO(what << ": gpu " << got.shape() << ", cpu " << want.shape());
  REQUIRE(got.shape() == want.shape());
  require_close(download(got), want.data(), want.size(), what);
}

// Every trainable parameter's gradient, entry by entry (same names and layout on both sides).
void require_same_grads(cpdiff::parameter_store<float, gpu>& pg, cpdiff::parameter_store<float, cpu>& pc,
                        const std::string& what) {
  cpdiff::check_same_entries(pc, pg, "require_same_grads");
  const std::vector<float> g = download(pg.grads());
  for (const auto& e : pc.entries()) {
    if (!e.trainable) continue;
    const std::vector<float> part(g.begin() + std::ptrdiff_t(e.offset), g.begin() + std::ptrdiff_t(e.offset + e.shape.size()));
    require_close(part, pc.grads().data() + e.offset, e.shape.size(), what + ": d" + e.name);
  }
}
// Every parameter value (the running statistics a training forward updates; the rest unchanged).
void require_same_values(cpdiff::parameter_store<float, gpu>& pg, cpdiff::parameter_store<float, cpu>& pc,
                         const std::string& what) {
  const std::vector<float> v = download(pg.values());
  for (const auto& e : pc.entries()) {
    const std::vector<float> part(v.begin() + std::ptrdiff_t(e.offset), v.begin() + std::ptrdiff_t(e.offset + e.shape.size()));
    require_close(part, pc.values().data() + e.offset, e.shape.size(), what + ": " + e.name);
  }
}

// Random values for every parameter, so that norms' weight 1 / bias 0 do not hide a wrong affine;
// variances stay positive.
void randomize(cpdiff::parameter_store<float, cpu>& ps, std::uint64_t seed) {
  for (std::size_t i = 0; i < ps.count(); ++i) {
    const std::string& name = ps.entries()[i].name;
    const bool var = name.size() >= 11 && name.compare(name.size() - 11, 11, "running_var") == 0;
    cpdiff::ops::fill_uniform(cpu{}, ps.value(cpdiff::param_id{i}), var ? 0.5f : -1.f, var ? 1.5f : 1.f, seed, i);
  }
}

struct no_setup {
  template <class A, class B>
  void operator()(A&, B&) const {}
};

// A layer with parameters, L<cpu> against L<gpu>: forward, then backward twice (dx each time; the
// parameter gradients must add up over both), then the parameter values (running statistics).
template <template <class> class L, class Setup = no_setup>
void compare_param_layer(const std::string& what, shape xs, std::uint64_t seed, Setup setup = {}, float x_mean = 0.f) {
  cpdiff::parameter_store<float, cpu> pc;
  cpdiff::parameter_store<float, gpu> pg;
  cpdiff::rng rc{seed}, rg{seed};
  L<cpu> lc(pc, "layer", rc);
  L<gpu> lg(pg, "layer", rg);
  randomize(pc, seed);
  cpdiff::copy_parameters(pc, pg);
  setup(lc, lg);
  const auto x = random_host(xs, seed + 1, x_mean);
  const auto xd = upload(x);
  const hcview yc = lc.forward(x.cview());
  require_close(lg.forward(xd.cview()), yc, what + ": y");
  const auto dy = random_host(yc.shape(), seed + 2);
  const auto dyd = upload(dy);
  cpdiff::ops::fill(cpu{}, pc.grads(), 0.f);
  cpdiff::ops::fill(gpu{}, pg.grads(), 0.f);
  for (int pass = 0; pass < 2; ++pass) {
    const hcview dxc = lc.backward(dy.cview());
    require_close(lg.backward(dyd.cview()), dxc, what + ": dx (backward " + std::to_string(pass + 1) + ")");
  }
  require_same_grads(pg, pc, what);
  require_same_values(pg, pc, what);
}

// A parameter-free layer, L<cpu> against L<gpu>: forward and dx.
template <template <class> class L>
void compare_free_layer(const std::string& what, shape xs, std::uint64_t seed, float x_mean = 0.f) {
  L<cpu> lc;
  L<gpu> lg{gpu{}};
  const auto x = random_host(xs, seed + 1, x_mean);
  const auto xd = upload(x);
  const hcview yc = lc.forward(x.cview());
  require_close(lg.forward(xd.cview()), yc, what + ": y");
  const auto dy = random_host(yc.shape(), seed + 2);
  const auto dyd = upload(dy);
  const hcview dxc = lc.backward(dy.cview());
  require_close(lg.backward(dyd.cview()), dxc, what + ": dx");
}

// The CPU layer keeps its own choice; the GPU layer is run with each algorithm in turn.
template <template <class> class L>
void compare_conv(const std::string& what, shape xs, std::uint64_t seed) {
  for (conv_algorithm a : all_algorithms)
    compare_param_layer<L>(what + " [gpu " + algorithm_name(a) + "]", xs, seed,
                           [a](auto&, auto& lg) { lg.set_algorithm(a); });
}

// Shrinks the GPU GEMM path's chunk budget for one scope, so that a small batch runs in several chunks.
struct chunk_budget_scope {
  std::size_t saved = cpdiff::ops::conv_cuda_detail::chunk_budget;
  explicit chunk_budget_scope(std::size_t elements) { cpdiff::ops::conv_cuda_detail::chunk_budget = elements; }
  ~chunk_budget_scope() { cpdiff::ops::conv_cuda_detail::chunk_budget = saved; }
};

template <class B>
using conv1d_k3_p1 = cpdiff::nn::conv1d<3, 5, 3, float, B, 1, 1>;
template <class B>
using conv1d_k5_s2_p2_d2 = cpdiff::nn::conv1d<4, 16, 5, float, B, 2, 2, 2>;
template <class B>
using conv1d_pointwise = cpdiff::nn::conv1d<6, 12, 1, float, B>;
template <class B>
using conv1d_wide = cpdiff::nn::conv1d<32, 48, 3, float, B, 1, 1>;
template <class B>
using conv1d_no_bias = cpdiff::nn::conv1d<2, 3, 4, float, B, 3, 1, 1, false>;
template <class B>
using convt_s2_p1_op1 = cpdiff::nn::conv_transpose1d<4, 3, 3, float, B, 2, 1, 1>;
template <class B>
using convt_fold5 = cpdiff::nn::conv_transpose1d<8, 16, 5, float, B, 5, 0>;
template <class B>
using convt_d2 = cpdiff::nn::conv_transpose1d<5, 2, 3, float, B, 1, 2, 0, 2>;
template <class B>
using conv2d_k3_p1 = cpdiff::nn::conv2d<3, 6, 3, float, B, 1, 1>;
template <class B>
using conv2d_k3_s2_d2 = cpdiff::nn::conv2d<4, 10, 3, float, B, 2, 1, 2>;
template <class B>
using conv2d_pointwise = cpdiff::nn::conv2d<5, 7, 1, float, B>;
template <class B>
using pool2 = cpdiff::nn::avg_pool2d<2, 2, float, B>;
template <class B>
using pool3_s2 = cpdiff::nn::avg_pool2d<3, 2, float, B>;
template <class B>
using pool3_s1 = cpdiff::nn::avg_pool2d<3, 1, float, B>;
template <class B>
using global_pool = cpdiff::nn::global_avg_pool<float, B>;
template <class B>
using inorm = cpdiff::nn::instance_norm1d<4, float, B>;
template <class B>
using inorm_affine = cpdiff::nn::instance_norm1d<4, float, B, true>;
template <class B>
using bnorm = cpdiff::nn::batch_norm1d<6, float, B>;
template <class B>
using gnorm = cpdiff::nn::group_norm<2, 6, float, B>;
template <class B>
using gnorm_per_channel = cpdiff::nn::group_norm<6, 6, float, B>;
template <class B>
using lnorm = cpdiff::nn::layer_norm<32, float, B>;
// The default p-diff U-Net's layers at their own channel counts (64..512; sequence 64 as in the model test).
template <class B>
using conv_128_64 = cpdiff::nn::conv1d<128, 64, 3, float, B, 1, 1>;
template <class B>
using conv_256_128 = cpdiff::nn::conv1d<256, 128, 3, float, B, 1, 1>;
template <class B>
using conv_512_256 = cpdiff::nn::conv1d<512, 256, 3, float, B, 1, 1>;
template <class B>
using inorm_128 = cpdiff::nn::instance_norm1d<128, float, B>;
template <class B>
using block_dec3 = cpdiff::models::norm_conv_block<128, 64, 64, 3, false, float, B>;
template <class B>
using block_dec2 = cpdiff::models::norm_conv_block<256, 128, 128, 3, false, float, B>;

}  // namespace

TEST_CASE("cuda conv1d matches the CPU (gemm and direct paths, stride, padding, dilation, 1x1)", "[cuda][conv]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_conv<conv1d_k3_p1>("conv1d<3,5,3,s1,p1>", {4, 3, 37}, 11);
  compare_conv<conv1d_k5_s2_p2_d2>("conv1d<4,16,5,s2,p2,d2>", {3, 4, 50}, 12);
  compare_conv<conv1d_pointwise>("conv1d<6,12,1>", {5, 6, 20}, 13);
  compare_conv<conv1d_wide>("conv1d<32,48,3,s1,p1>", {6, 32, 90}, 14);
  compare_conv<conv1d_no_bias>("conv1d<2,3,4,s3,p1,no bias>", {2, 2, 17}, 15);
}

TEST_CASE("cuda conv1d: the GEMM path in several chunks (budget of ~2 samples, remainder chunk)", "[cuda][conv]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  // conv1d<32,48,3> at length 90: (R + c_out) * P = (96 + 48) * 90 elements per sample
  chunk_budget_scope scope((96 + 48) * 90 * 2 + 1);
  compare_param_layer<conv1d_wide>("conv1d<32,48,3> chunked", {7, 32, 90}, 21,
                                   [](auto&, auto& lg) { lg.set_algorithm(conv_algorithm::gemm); });
  compare_param_layer<convt_fold5>("conv_transpose1d<8,16,5,s5> chunked", {5, 8, 12}, 22,
                                   [](auto&, auto& lg) { lg.set_algorithm(conv_algorithm::gemm); });
  compare_param_layer<conv2d_k3_p1>("conv2d<3,6,3> chunked", {5, 3, 9, 11}, 23,
                                    [](auto&, auto& lg) { lg.set_algorithm(conv_algorithm::gemm); });
}

TEST_CASE("cuda conv1d, instance norm and U-Net blocks at p-diff's channel counts", "[cuda][conv][unet_layers]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_conv<conv_128_64>("conv1d<128,64,3>", {2, 128, 64}, 31);
  compare_conv<conv_256_128>("conv1d<256,128,3>", {2, 256, 64}, 32);
  compare_conv<conv_512_256>("conv1d<512,256,3>", {2, 512, 64}, 33);
  compare_free_layer<inorm_128>("instance_norm1d<128>", {2, 128, 64}, 34);
  compare_param_layer<block_dec3>("norm_conv_block<128,64,64>", {2, 128, 64}, 35);
  compare_param_layer<block_dec2>("norm_conv_block<256,128,128>", {2, 256, 64}, 36);
}

TEST_CASE("cuda conv_transpose1d matches the CPU (stride, padding, output padding, dilation)", "[cuda][conv]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_conv<convt_s2_p1_op1>("conv_transpose1d<4,3,3,s2,p1,op1>", {3, 4, 20}, 31);
  compare_conv<convt_fold5>("conv_transpose1d<8,16,5,s5>", {2, 8, 13}, 32);
  compare_conv<convt_d2>("conv_transpose1d<5,2,3,p2,d2>", {4, 5, 15}, 33);
}

TEST_CASE("cuda conv2d matches the CPU", "[cuda][conv]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_conv<conv2d_k3_p1>("conv2d<3,6,3,s1,p1>", {2, 3, 9, 11}, 41);
  compare_conv<conv2d_k3_s2_d2>("conv2d<4,10,3,s2,p1,d2>", {3, 4, 13, 10}, 42);
  compare_conv<conv2d_pointwise>("conv2d<5,7,1>", {2, 5, 6, 4}, 43);
}

TEST_CASE("cuda avg_pool2d and global average pooling match the CPU", "[cuda][pooling]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_free_layer<pool2>("avg_pool2d<2>", {3, 4, 8, 10}, 51);
  compare_free_layer<pool3_s2>("avg_pool2d<3,s2> (overlapping windows, ragged edge)", {2, 3, 10, 7}, 52);
  compare_free_layer<pool3_s1>("avg_pool2d<3,s1>", {2, 2, 6, 9}, 53);
  compare_free_layer<global_pool>("global_avg_pool [N, C, L]", {4, 5, 333}, 54);
  compare_free_layer<global_pool>("global_avg_pool [N, C, H, W]", {2, 3, 6, 7}, 55);
}

TEST_CASE("cuda instance_norm1d matches the CPU (with and without affine, large mean)", "[cuda][norm]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_free_layer<inorm>("instance_norm1d<4>", {3, 4, 50}, 61);
  compare_free_layer<inorm>("instance_norm1d<4>, mean 100", {3, 4, 50}, 62, 100.f);
  compare_free_layer<inorm>("instance_norm1d<4>, long rows", {2, 4, 20000}, 63);
  compare_param_layer<inorm_affine>("instance_norm1d<4, affine>", {3, 4, 50}, 64);
}

TEST_CASE("cuda batch_norm1d matches the CPU in training and evaluation", "[cuda][norm]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const auto train = [](auto& lc, auto& lg) {
    lc.set_training(true);
    lg.set_training(true);
  };
  const auto eval = [](auto& lc, auto& lg) {
    lc.set_training(false);
    lg.set_training(false);
  };
  compare_param_layer<bnorm>("batch_norm1d<6> train [N, C, L]", {8, 6, 10}, 71, train);
  compare_param_layer<bnorm>("batch_norm1d<6> train [N, C], mean 50", {16, 6}, 72, train, 50.f);
  compare_param_layer<bnorm>("batch_norm1d<6> eval [N, C, L]", {8, 6, 10}, 73, eval);
  compare_param_layer<bnorm>("batch_norm1d<6> eval [N, C]", {16, 6}, 74, eval);
}

TEST_CASE("cuda group_norm and layer_norm match the CPU", "[cuda][norm]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_param_layer<gnorm>("group_norm<2,6> [N, C, L]", {3, 6, 20}, 81);
  compare_param_layer<gnorm>("group_norm<2,6> [N, C]", {5, 6}, 82);
  compare_param_layer<gnorm_per_channel>("group_norm<6,6>, mean 20", {3, 6, 40}, 83, no_setup{}, 20.f);
  compare_param_layer<lnorm>("layer_norm<32> [N, S, D]", {5, 7, 32}, 84);
  compare_param_layer<lnorm>("layer_norm<32> [N, D], mean 10", {9, 32}, 85, no_setup{}, 10.f);
}

namespace {

// Whole models, in two precisions.
// float, forward only: the GPU's output against the float CPU's, within
//   max(1e-4 * max |cpu_d|, 10 * max |cpu_f - cpu_d|)
// where the CPU model in double measures what float itself can deliver (require_close_model).
// double, forward and backward: every output, input gradient and parameter gradient against the CPU in
// double to 1e-9 of the tensor's largest value (require_close_double). The gradients are compared in double,
// not float, because a deep float model's gradients are not a stable quantity: a pre-activation within
// float's rounding of 0 may fall on either side of a LeakyReLU's kink on the two backends, and every
// gradient upstream then changes by ~1e-3 (seen on an H200 in the default U-Net: dec2 and everything before
// it off by up to 8e-3 of their size, dec3 / dec4 / out exact, the GPU repeatable bit for bit, and every
// block alone at the same sizes within 1e-4). In double such a flip needs |x| < ~1e-15.
void require_close_model(const std::vector<float>& got, const float* cpu_f, const double* cpu_d, std::size_t n,
                         const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == n);
  double max_ref = 0, noise = 0, max_diff = 0;
  std::size_t worst = 0;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(got[i]);
    max_ref = std::max(max_ref, std::abs(cpu_d[i]));
    noise = std::max(noise, std::abs(double(cpu_f[i]) - cpu_d[i]));
    const double d = std::abs(double(got[i]) - double(cpu_f[i]));
    if (d > max_diff) max_diff = d, worst = i;
  }
  const double allowed = std::max(rel_tol * max_ref, 10 * noise);
  INFO("max |gpu - cpu_f| = " << max_diff << " at element " << worst << " (gpu " << (n ? got[worst] : 0.f)
                              << ", cpu_f " << (n ? cpu_f[worst] : 0.f) << "), max |cpu_d| = " << max_ref
                              << ", float noise max |cpu_f - cpu_d| = " << noise << ", allowed " << allowed);
  REQUIRE(finite);
  REQUIRE(max_ref > 0);
  CHECK(max_diff <= allowed);
}
void require_close_model(dcview got, hcview cpu_f, cpdiff::tensor_view<const double> cpu_d, const std::string& what) {
  INFO(what << ": gpu " << got.shape() << ", cpu " << cpu_f.shape());
  REQUIRE(got.shape() == cpu_f.shape());
  REQUIRE(cpu_d.shape() == cpu_f.shape());
  require_close_model(download(got), cpu_f.data(), cpu_d.data(), cpu_f.size(), what);
}

constexpr double double_rel_tol = 1e-9;
// floor: an absolute allowance for tensors whose exact value is 0 (a conv bias just before an instance norm).
void require_close_double(const std::vector<double>& got, const double* want, std::size_t n, const std::string& what,
                          double floor = 0) {
  cpdiff::testing::require_close_to(got, want, n, what + " (in double)", double_rel_tol, floor);
}
void require_close_double(cpdiff::tensor_view<const double, cpdiff::device_space> got,
                          cpdiff::tensor_view<const double> want, const std::string& what) {
  INFO(what << ": gpu " << got.shape() << ", cpu " << want.shape());
  REQUIRE(got.shape() == want.shape());
  require_close_double(cpdiff::ops::to_host(gpu{}, got), want.data(), want.size(), what);
}
void require_double_grads(cpdiff::parameter_store<double, gpu>& pg, cpdiff::parameter_store<double, cpu>& pc,
                          const std::string& what) {
  cpdiff::check_same_entries(pc, pg, "require_double_grads");
  const std::vector<double> g = cpdiff::ops::to_host(gpu{}, std::as_const(pg).grads());
  double store_max = 0;  // the floor of each entry: 1e-12 of the largest gradient of the model
  for (std::size_t i = 0; i < pc.size(); ++i) store_max = std::max(store_max, std::abs(pc.grads().data()[i]));
  for (const auto& e : pc.entries()) {
    if (!e.trainable) continue;
    const std::vector<double> part(g.begin() + std::ptrdiff_t(e.offset), g.begin() + std::ptrdiff_t(e.offset + e.shape.size()));
    require_close_double(part, pc.grads().data() + e.offset, e.shape.size(), what + " (double): d" + e.name,
                         1e-12 * store_max);
  }
}

template <class T>
host_tensor<T> to_type(const host_tensor<float>& f) {
  host_tensor<T> d(f.shape());
  std::copy(f.data(), f.data() + f.size(), d.data());
  return d;
}
template <class T>
device_tensor<T> upload_as(const host_tensor<float>& f) {
  return upload(to_type<T>(f));
}

// The p-diff autoencoder on both backends: a training pass (both noises, clamp) in float, compared on its
// reconstruction; then in double, the reconstruction, every gradient and the latent of encode().
template <class Config>
void compare_autoencoder(const std::string& what, std::size_t n_params, std::size_t batch, std::uint64_t seed) {
  cpdiff::models::pdiff_autoencoder<Config, float, cpu> ac(n_params, seed);
  cpdiff::models::pdiff_autoencoder<Config, double, cpu> ad(n_params, seed);
  cpdiff::models::pdiff_autoencoder<Config, float, gpu> ag(n_params, seed);
  cpdiff::models::pdiff_autoencoder<Config, double, gpu> agd(n_params, seed);
  cpdiff::copy_parameters(ac.parameters(), ag.parameters());
  cpdiff::copy_parameters(ac.parameters(), ad.parameters());
  cpdiff::copy_parameters(ad.parameters(), agd.parameters());
  const auto x = random_host({batch, n_params}, seed + 1, 0.f, 0.05f);  // LoRA-sized values
  const auto x64 = to_type<double>(x);
  const auto xd = upload(x);
  const auto xd64 = upload(x64);
  // the same noise draws on all four
  cpdiff::rng gc{seed + 2, 0}, gd{seed + 2, 0}, gg{seed + 2, 0}, ggd{seed + 2, 0};
  const hcview yc = ac.forward_train(x.cview(), gc);
  const auto y64 = ad.forward_train(x64.cview(), gd);
  require_close_model(ag.forward_train(xd.cview(), gg), yc, y64, what + ": reconstruction (float)");
  require_close_double(agd.forward_train(xd64.cview(), ggd), y64, what + ": reconstruction (double)");
  const auto dr = to_type<double>(random_host(yc.shape(), seed + 3));
  const auto drd = upload(dr);
  cpdiff::ops::fill(cpu{}, ad.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, agd.parameters().grads(), 0.0);
  ad.backward_train(dr.cview());
  agd.backward_train(drd.cview());
  require_double_grads(agd.parameters(), ad.parameters(), what);
  // encode() adds no noise
  const hcview zc = ac.encode(x.cview());
  const auto z64 = ad.encode(x64.cview());
  require_close_model(ag.encode(xd.cview()), zc, z64, what + ": latent (float)");
  require_close_double(agd.encode(xd64.cview()), z64, what + ": latent (double)");
}

// The conditional U-Net on both backends: the forward in float; forward, d cond and every gradient in double.
template <class Config, class TimeEmbedding>
void compare_unet(const std::string& what, shape latent, std::size_t cond_dim, std::size_t steps, std::size_t batch,
                  std::uint64_t seed) {
  cpdiff::models::pdiff_unet<Config, TimeEmbedding, float, cpu> uc(latent, cond_dim, steps, seed);
  cpdiff::models::pdiff_unet<Config, TimeEmbedding, double, cpu> ud(latent, cond_dim, steps, seed);
  cpdiff::models::pdiff_unet<Config, TimeEmbedding, float, gpu> ug(latent, cond_dim, steps, seed);
  cpdiff::models::pdiff_unet<Config, TimeEmbedding, double, gpu> ugd(latent, cond_dim, steps, seed);
  cpdiff::copy_parameters(uc.parameters(), ug.parameters());
  cpdiff::copy_parameters(uc.parameters(), ud.parameters());
  cpdiff::copy_parameters(ud.parameters(), ugd.parameters());
  const auto z = random_host({batch, latent[0], latent[1]}, seed + 1);
  const auto cond = random_host({batch, cond_dim}, seed + 2);
  host_tensor<std::int64_t> t({batch});
  for (std::size_t i = 0; i < batch; ++i) t.data()[i] = static_cast<std::int64_t>((7 * i + 3) % steps);
  const auto td = upload(t);
  const auto z64 = to_type<double>(z), cond64 = to_type<double>(cond);
  const hcview yc = uc.forward(z.cview(), t.cview(), cond.cview());
  const auto y64 = ud.forward(z64.cview(), t.cview(), cond64.cview());
  require_close_model(ug.forward(upload(z).cview(), td.cview(), upload(cond).cview()), yc, y64, what + ": eps_hat (float)");
  const auto zd64 = upload(z64), condd64 = upload(cond64);
  require_close_double(ugd.forward(zd64.cview(), td.cview(), condd64.cview()), y64, what + ": eps_hat (double)");
  const auto de64 = to_type<double>(random_host(yc.shape(), seed + 3));
  const auto ded64 = upload(de64);
  cpdiff::ops::fill(cpu{}, ud.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, ugd.parameters().grads(), 0.0);
  const auto dc64 = ud.backward(de64.cview());
  require_close_double(ugd.backward(ded64.cview()), dc64, what + ": d cond (double)");
  require_double_grads(ugd.parameters(), ud.parameters(), what);
}

struct small_unet {
  static constexpr std::array<std::size_t, 4> channels{8, 16, 16, 32};
  static constexpr std::size_t kernel = 3;
};

}  // namespace

TEST_CASE("cuda pdiff_autoencoder (small and medium presets) trains like the CPU", "[cuda][models][autoencoder]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_autoencoder<cpdiff::models::pdiff_small>("pdiff_autoencoder<small>", 2000, 4, 91);
  compare_autoencoder<cpdiff::models::pdiff_medium>("pdiff_autoencoder<medium>", 2048, 2, 92);
}

TEST_CASE("cuda pdiff_unet matches the CPU forward and backward", "[cuda][models][unet]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  compare_unet<cpdiff::models::pdiff_unet_default, cpdiff::models::learned>("pdiff_unet<default, learned>", {4, 12}, 16,
                                                                            1000, 2, 101);
  compare_unet<small_unet, cpdiff::models::sinusoidal<8, 16>>("pdiff_unet<small, sinusoidal>", {2, 20}, 6, 100, 3, 102);
}

