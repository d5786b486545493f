// The example's models, the samplers and the diffusion trainer on the GPU against the CPU (the reference),
// all in double so that a comparison through LeakyReLU / ELU kinks and long chains is stable (see
// test_cuda_layers.cu's model section for why float gradients are not):
//   mlp_denoiser, bottom_unet forward, d cond and every parameter gradient
//   style_image_encoder, vector_projector, lora_mlp (LoRA on both layers)
//                            forward, input gradient (where there is one) and every parameter gradient
//   style_autoencoder        a training pass (BatchNorm batch statistics, ELU, Tanh latent, clamp) and its
//                            gradients, the running statistics it updates, and encode() in evaluation mode
//   ddpm_sampler / ddim      whole sampling chains (DDPM 100 steps, DDIM 20 steps with eta 0 and 1) from the
//                            same seed: the same samples
//   autoencoder_trainer      20 steps of the style autoencoder from the same seed: losses and parameters
//   diffusion_trainer        30 steps of training (batches, noise, AdamW, EMA) from the same seed: the same
//                            losses and parameters; and in float, a run with bf16 matrix products for its
//                            first 75% (train_options::bf16_fraction) against the same run in fp32
// Tolerance: max |gpu - cpu| <= 1e-9 * max |cpu| over each tensor (the GPU's exp / log / sin round
// differently in the last bits; everything else is the same IEEE arithmetic).
// Without a device the program prints "SKIPPED: no CUDA device" and exits 77 (CTest: Skipped).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <ratio>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/cpdiff_cuda.cuh"
#include "cpdiff/diffusion/ddim_sampler.hpp"
#include "cpdiff/diffusion/ddpm_sampler.hpp"
#include "cpdiff/models/bottom_unet.hpp"
#include "cpdiff/models/condition_encoders.hpp"
#include "cpdiff/models/lora_mlp.hpp"
#include "cpdiff/models/mlp_denoiser.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/models/style_image_encoder.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"
#include "support/close_check.hpp"
#include "support/cuda_device.hpp"

namespace {

// Not `using namespace cpdiff`: libcu++'s global namespace ::cuda would make `cuda` ambiguous.
using cpdiff::cpu;
using cpdiff::shape;
using cpdiff::gpu;
using host_tensor = cpdiff::tensor<double, cpu>;
using device_tensor = cpdiff::tensor<double, gpu>;
using hcview = cpdiff::tensor_view<const double, cpdiff::host_space>;
using dcview = cpdiff::tensor_view<const double, cpdiff::device_space>;
using index_t = std::int64_t;

constexpr double rel_tol = 1e-9;

host_tensor random_host(shape s, std::uint64_t seed, double mean = 0, double stddev = 1) {
  host_tensor t(s);
  cpdiff::ops::fill_normal(cpu{}, t.view(), mean, stddev, seed, 0);
  return t;
}
template <class T>
cpdiff::tensor<T, gpu> upload(const cpdiff::tensor<T, cpu>& h) {
  cpdiff::tensor<T, gpu> d(h.shape());
  cpdiff::ops::from_host(gpu{}, std::span<const T>(h.data(), h.size()), d.view());
  return d;
}

// floor: see support/close_check.hpp (tensors whose exact value is 0: a conv bias before a norm)
void require_close(const std::vector<double>& got, const double* want, std::size_t n, const std::string& what,
                   double floor = 0) {
  cpdiff::testing::require_close_to(got, want, n, what, rel_tol, floor);
}
void require_close(dcview got, hcview want, const std::string& what) {
  INFO(what << ": gpu " << got.shape() << ", cpu " << want.shape());
  REQUIRE(got.shape() == want.shape());
  require_close(cpdiff::ops::to_host(gpu{}, got), want.data(), want.size(), what);
}
// Every entry of the two stores, values or gradients, one comparison per entry.
void require_same_store(cpdiff::parameter_store<double, gpu>& pg, cpdiff::parameter_store<double, cpu>& pc,
                        bool grads, const std::string& what) {
  cpdiff::check_same_entries(pc, pg, "require_same_store");
  const auto& cpg = std::as_const(pg);
  const std::vector<double> g = cpdiff::ops::to_host(gpu{}, grads ? cpg.grads() : cpg.values());
  const double* c = grads ? pc.grads().data() : pc.values().data();
  double store_max = 0;  // the floor of each entry: 1e-12 of the largest value in the store
  for (std::size_t i = 0; i < pc.size(); ++i) store_max = std::max(store_max, std::abs(c[i]));
  for (const auto& e : pc.entries()) {
    if (grads && !e.trainable) continue;
    const std::vector<double> part(g.begin() + std::ptrdiff_t(e.offset), g.begin() + std::ptrdiff_t(e.offset + e.shape.size()));
    require_close(part, c + e.offset, e.shape.size(), what + (grads ? ": d" : ": ") + e.name, 1e-12 * store_max);
  }
}

struct small_mlp {
  static constexpr std::size_t width = 32, depth = 2;
};
template <class B>
using denoiser = cpdiff::models::mlp_denoiser<small_mlp, cpdiff::models::sinusoidal<16, 32>, double, B>;

struct small_style {
  static constexpr std::array<std::size_t, 3> channels{4, 8, 4};
  static constexpr std::size_t kernel = 3, latent = 6;
};
template <class B>
using style_ae = cpdiff::models::style_autoencoder<small_style, double, B>;

constexpr std::size_t cond_dim = 5, steps = 100;
const shape latent{2, 3};

}  // namespace

TEST_CASE("cuda mlp_denoiser matches the CPU in double: eps_hat, d cond, every gradient", "[cuda][models][mlp]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  denoiser<cpu> nc(latent, cond_dim, steps, 7);
  denoiser<gpu> ng(latent, cond_dim, steps, 7);
  cpdiff::copy_parameters(nc.parameters(), ng.parameters());
  const std::size_t n = 6;
  const auto z = random_host({n, 2, 3}, 1), c = random_host({n, cond_dim}, 2), de = random_host({n, 2, 3}, 3);
  cpdiff::tensor<index_t, cpu> t({n});
  for (std::size_t i = 0; i < n; ++i) t.data()[i] = static_cast<index_t>((17 * i + 5) % steps);
  const auto zd = upload(z), cd = upload(c), ded = upload(de);
  const auto td = upload(t);
  require_close(ng.forward(zd.cview(), td.cview(), cd.cview()), nc.forward(z.cview(), t.cview(), c.cview()),
                "mlp_denoiser eps_hat");
  cpdiff::ops::fill(cpu{}, nc.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, ng.parameters().grads(), 0.0);
  require_close(ng.backward(ded.cview()), nc.backward(de.cview()), "mlp_denoiser d cond");
  require_same_store(ng.parameters(), nc.parameters(), true, "mlp_denoiser");
}

TEST_CASE("cuda style_autoencoder (BatchNorm, ELU, Tanh latent, clamp, linear skip) trains like the CPU in double",
          "[cuda][models][style_ae]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const bool skip = GENERATE(false, true);
  INFO("linear_skip " << skip);
  const auto options = [skip](auto o) {  // each backend's model has its own options type
    o.tanh_latent = true;
    o.clamp_latent = true;
    o.linear_skip = skip;
    return o;
  };
  const std::size_t n_params = 300, batch = 5;
  style_ae<cpu> ac(n_params, 11, options(typename style_ae<cpu>::options{}));
  style_ae<gpu> ag(n_params, 11, options(typename style_ae<gpu>::options{}));
  cpdiff::copy_parameters(ac.parameters(), ag.parameters());
  const auto x = random_host({batch, n_params}, 12, 0, 0.05);
  const auto xd = upload(x);
  cpdiff::rng gc{13, 0}, gg{13, 0};  // the same noise draws
  const hcview yc = ac.forward_train(x.cview(), gc);
  require_close(ag.forward_train(xd.cview(), gg), yc, "style_autoencoder reconstruction");
  const auto dr = random_host(yc.shape(), 14);
  const auto drd = upload(dr);
  cpdiff::ops::fill(cpu{}, ac.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, ag.parameters().grads(), 0.0);
  ac.backward_train(dr.cview());
  ag.backward_train(drd.cview());
  require_same_store(ag.parameters(), ac.parameters(), true, "style_autoencoder");
  require_same_store(ag.parameters(), ac.parameters(), false, "style_autoencoder (values, running statistics)");
  require_close(ag.encode(xd.cview()), ac.encode(x.cview()), "style_autoencoder encode (running statistics)");
}

TEST_CASE("cuda samplers: DDPM and DDIM chains from the same seed give the CPU's samples (double)",
          "[cuda][diffusion][samplers]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  denoiser<cpu> nc(latent, cond_dim, steps, 21);
  denoiser<gpu> ng(latent, cond_dim, steps, 21);
  cpdiff::copy_parameters(nc.parameters(), ng.parameters());
  const std::size_t n = 8;
  const auto c = random_host({n, cond_dim}, 22);
  const auto cd = upload(c);
  auto model_c = [&](hcview x, cpdiff::tensor_view<const index_t> t) { return nc.forward(x, t, c.cview()); };
  auto model_g = [&](dcview x, cpdiff::tensor_view<const index_t, cpdiff::device_space> t) {
    return ng.forward(x, t, cd.cview());
  };
  const cpdiff::diffusion::noise_schedule sched(steps);
  {
    cpdiff::diffusion::ddpm_sampler<double, cpu> sc(sched);
    cpdiff::diffusion::ddpm_sampler<double, gpu> sg(sched);
    cpdiff::rng gc{23}, gg{23};
    const hcview xc = sc.sample(model_c, {n, 2, 3}, gc);
    require_close(sg.sample(model_g, {n, 2, 3}, gg), xc, "ddpm_sampler, 100 steps");
  }
  for (double eta : {0.0, 1.0}) {
    cpdiff::diffusion::ddim_sampler<double, cpu> sc(sched, {.steps = 20, .eta = eta});
    cpdiff::diffusion::ddim_sampler<double, gpu> sg(sched, {.steps = 20, .eta = eta});
    cpdiff::rng gc{24}, gg{24};
    const hcview xc = sc.sample(model_c, {n, 2, 3}, gc);
    require_close(sg.sample(model_g, {n, 2, 3}, gg), xc, "ddim_sampler, 20 steps, eta " + std::to_string(eta));
  }
}

TEST_CASE("cuda diffusion_trainer: 30 steps from the same seed follow the CPU (losses, parameters, EMA)",
          "[cuda][train][diffusion]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  constexpr std::size_t m = 40, k = 3;
  const auto z = random_host({m, 2, 3}, 31, 0, 0.5);
  host_tensor table({k, cond_dim});
  cpdiff::ops::fill_normal(cpu{}, table.view(), 0.0, 1.0, 32, 0);
  std::vector<int> ids(m);
  for (std::size_t i = 0; i < m; ++i) ids[i] = static_cast<int>(i % k);
  denoiser<cpu> nc(latent, cond_dim, steps, 33);
  denoiser<gpu> ng(latent, cond_dim, steps, 33);
  cpdiff::copy_parameters(nc.parameters(), ng.parameters());
  const cpdiff::train::train_options opt{.steps = 30, .batch_size = 16, .adamw = {.lr = 1e-3},
                                         .schedule = cpdiff::train::lr_schedule::cosine, .clip_grad_norm = 1.0,
                                         .ema_decay = 0.9, .seed = 34};
  const auto conds = cpdiff::train::condition_set<double>::by_id(std::span<const int>(ids), table.cview());
  cpdiff::train::diffusion_trainer tc(nc, cpdiff::diffusion::noise_schedule(steps), z.cview(), conds, opt);
  cpdiff::train::diffusion_trainer tg(ng, cpdiff::diffusion::noise_schedule(steps), z.cview(), conds, opt);
  for (int s = 0; s < 30; ++s) {
    const double lc = tc.run(1), lg = tg.run(1);
    INFO("step " << s << ": loss cpu " << lc << ", gpu " << lg);
    REQUIRE(std::isfinite(lg));
    REQUIRE(std::abs(lg - lc) <= rel_tol * std::abs(lc));
  }
  require_same_store(ng.parameters(), nc.parameters(), false, "diffusion_trainer, after 30 steps");
  REQUIRE(tc.ema() != nullptr);
  REQUIRE(tg.ema() != nullptr);
  tc.ema()->swap_in();
  tg.ema()->swap_in();
  require_same_store(ng.parameters(), nc.parameters(), false, "diffusion_trainer EMA weights");
}

TEST_CASE("cuda diffusion_trainer with bf16_fraction 0.75 trains like fp32 (float, mixed precision)",
          "[cuda][train][precision]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using fdenoiser = cpdiff::models::mlp_denoiser<small_mlp, cpdiff::models::sinusoidal<16, 32>, float, gpu>;
  constexpr std::size_t m = 300, k = 3;
  // class k's latents around the mean k/2 - 0.5, spread 0.1; its condition row is one-hot
  cpdiff::tensor<float, cpu> z({m, 2, 3}), table({k, cond_dim});
  cpdiff::ops::fill_normal(cpu{}, z.view(), 0.f, 0.1f, 41, 0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < 6; ++j) z.data()[i * 6 + j] += 0.5f * float(i % k) - 0.5f;
  cpdiff::ops::fill(cpu{}, table.view(), 0.f);
  for (std::size_t c = 0; c < k; ++c) table.data()[c * cond_dim + c] = 1.f;
  std::vector<int> ids(m);
  for (std::size_t i = 0; i < m; ++i) ids[i] = static_cast<int>(i % k);
  const auto conds = cpdiff::train::condition_set<float>::by_id(std::span<const int>(ids), table.cview());
  double first[2], last[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    fdenoiser net(latent, cond_dim, steps, 42);
    cpdiff::train::diffusion_trainer trainer(
        net, cpdiff::diffusion::noise_schedule(steps), z.cview(), conds,
        {.steps = 800, .batch_size = 64, .adamw = {.lr = 2e-3}, .schedule = cpdiff::train::lr_schedule::cosine,
         .ema_decay = 0.0, .bf16_fraction = bf16 ? 0.75 : 0.0, .seed = 43});
    first[bf16] = trainer.run(100);
    trainer.run(500);
    last[bf16] = trainer.run(200);  // the last 200 steps: fp32 in both runs
  }
  WARN("eps-MSE, first 100 / last 200 steps: fp32 " << first[0] << " / " << last[0] << ", bf16 for 75% "
                                                     << first[1] << " / " << last[1]);
  CHECK(last[0] < 0.5 * first[0]);
  CHECK(last[1] < 0.5 * first[1]);
  CHECK(std::abs(last[1] - last[0]) < 0.1 * last[0]);  // mixed precision costs little of the fit
}

namespace {

// Randomises every parameter of the CPU model (so that LoRA B = 0 or norm weights 1 hide nothing) and
// copies them to the GPU model.
template <class MC, class MG>
void same_random_parameters(MC& mc, MG& mg, std::uint64_t seed) {
  auto& ps = mc.parameters();
  cpdiff::ops::fill_uniform(cpu{}, ps.values(), -0.5, 0.5, seed, 0);
  cpdiff::copy_parameters(ps, mg.parameters());
}
// A one-input model (forward(x) -> y, backward(dy) -> dx or nothing) on both backends.
template <class MC, class MG>
void compare_one_input(MC& mc, MG& mg, shape xs, std::uint64_t seed, const std::string& what) {
  same_random_parameters(mc, mg, seed);
  const auto x = random_host(xs, seed + 1);
  const auto xd = upload(x);
  const hcview yc = mc.forward(x.cview());
  require_close(mg.forward(xd.cview()), yc, what + ": y");
  const auto dy = random_host(yc.shape(), seed + 2);
  const auto dyd = upload(dy);
  cpdiff::ops::fill(cpu{}, mc.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, mg.parameters().grads(), 0.0);
  if constexpr (std::is_void_v<decltype(mc.backward(dy.cview()))>) {
    mc.backward(dy.cview());
    mg.backward(dyd.cview());
  } else {
    const hcview dxc = mc.backward(dy.cview());
    require_close(mg.backward(dyd.cview()), dxc, what + ": dx");
  }
  require_same_store(mg.parameters(), mc.parameters(), true, what);
}

struct tiny_bottom {
  static constexpr std::array<std::size_t, 3> channels{8, 16, 8};
  static constexpr std::size_t kernel = 3, groups = 4;
};
struct tiny_style_encoder {
  static constexpr std::size_t in_channels = 1, c1 = 4, c2 = 6, kernel = 3;
};

}  // namespace

TEST_CASE("cuda bottom_unet (GroupNorm, down/up-sampling, bottom condition) matches the CPU in double",
          "[cuda][models][bottom_unet]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  using C = cpdiff::models::bottom_unet<tiny_bottom, cpdiff::models::learned, double, cpu>;
  using G = cpdiff::models::bottom_unet<tiny_bottom, cpdiff::models::learned, double, gpu>;
  C nc({2, 6}, 4, 50, 51);
  G ng({2, 6}, 4, 50, 51);
  same_random_parameters(nc, ng, 52);
  const std::size_t n = 3;
  const auto z = random_host({n, 2, 6}, 53), c = random_host({n, 4}, 54), de = random_host({n, 2, 6}, 55);
  cpdiff::tensor<index_t, cpu> t({n});
  for (std::size_t i = 0; i < n; ++i) t.data()[i] = static_cast<index_t>(11 * i + 2);
  const auto zd = upload(z), cd = upload(c), ded = upload(de);
  const auto td = upload(t);
  require_close(ng.forward(zd.cview(), td.cview(), cd.cview()), nc.forward(z.cview(), t.cview(), c.cview()),
                "bottom_unet eps_hat");
  cpdiff::ops::fill(cpu{}, nc.parameters().grads(), 0.0);
  cpdiff::ops::fill(gpu{}, ng.parameters().grads(), 0.0);
  require_close(ng.backward(ded.cview()), nc.backward(de.cview()), "bottom_unet d cond");
  require_same_store(ng.parameters(), nc.parameters(), true, "bottom_unet");
}

TEST_CASE("cuda condition encoders and the LoRA base model match the CPU in double",
          "[cuda][models][conditions][lora]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  {
    cpdiff::models::style_image_encoder<tiny_style_encoder, double, cpu> ec(5, 61);
    cpdiff::models::style_image_encoder<tiny_style_encoder, double, gpu> eg(5, 61);
    compare_one_input(ec, eg, {2, 3, 10, 10}, 62, "style_image_encoder");
  }
  {
    cpdiff::models::vector_projector<double, cpu> pc(12, 5, 63, 7);
    cpdiff::models::vector_projector<double, gpu> pg(12, 5, 63, 7);
    compare_one_input(pc, pg, {4, 12}, 64, "vector_projector (hidden 7)");
  }
  {
    cpdiff::models::lora_mlp<3, std::ratio<8>, 12, double, cpu> mc(65);
    cpdiff::models::lora_mlp<3, std::ratio<8>, 12, double, gpu> mg(65);
    compare_one_input(mc, mg, {4, 784}, 66, "lora_mlp<r 3, alpha 8>");
  }
}

TEST_CASE("cuda autoencoder_trainer: 20 style-autoencoder steps from the same seed follow the CPU",
          "[cuda][train][autoencoder]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  const auto data = random_host({30, 200}, 71, 0, 0.05);
  style_ae<cpu> ac(200, 72);
  style_ae<gpu> ag(200, 72);
  cpdiff::copy_parameters(ac.parameters(), ag.parameters());
  const cpdiff::train::train_options opt{.steps = 20, .batch_size = 8, .adamw = {.lr = 1e-3}, .seed = 73};
  cpdiff::train::autoencoder_trainer tc(ac, data.cview(), opt);
  cpdiff::train::autoencoder_trainer tg(ag, data.cview(), opt);
  for (int s = 0; s < 20; ++s) {
    const double lc = tc.run(1), lg = tg.run(1);
    INFO("step " << s << ": loss cpu " << lc << ", gpu " << lg);
    REQUIRE(std::isfinite(lg));
    REQUIRE(std::abs(lg - lc) <= rel_tol * std::abs(lc));
  }
  require_same_store(ag.parameters(), ac.parameters(), false, "autoencoder_trainer, after 20 steps");
}

TEST_CASE("cuda: a whole model on its own stream gives the default stream's results (every kernel follows the store)",
          "[cuda][models][stream]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);  // no implicit sync with stream 0
  {
    const gpu own = gpu{}.on(s);
    const std::size_t n_params = 300, batch = 4;
    style_ae<gpu> a_default(n_params, 21, [] {
      typename style_ae<gpu>::options o;
      o.tanh_latent = o.clamp_latent = o.linear_skip = true;
      return o;
    }());
    style_ae<gpu> a_own(n_params, 21, a_default.noise_options(), own);
    REQUIRE(a_own.parameters().backend() == own);
    const auto x = random_host({batch, n_params}, 22, 0, 0.05);
    cpdiff::tensor<double, gpu> xd(x.shape()), xo(x.shape());
    cpdiff::ops::from_host(gpu{}, std::span<const double>(x.data(), x.size()), xd.view());
    cpdiff::ops::from_host(own, std::span<const double>(x.data(), x.size()), xo.view());
    cpdiff::rng g1{23, 0}, g2{23, 0};
    const std::vector<double> y_default = cpdiff::ops::to_host(gpu{}, a_default.forward_train(xd.cview(), g1));
    const std::vector<double> y_own = cpdiff::ops::to_host(own, a_own.forward_train(xo.cview(), g2));
    require_close(y_own, y_default.data(), y_default.size(), "style_autoencoder forward on its own stream");
    cpdiff::tensor<double, gpu> dd(shape{batch, n_params}), dov(shape{batch, n_params});
    cpdiff::ops::fill(gpu{}, dd.view(), 1e-3);
    cpdiff::ops::fill(own, dov.view(), 1e-3);
    cpdiff::ops::fill(gpu{}, a_default.parameters().grads(), 0.0);
    cpdiff::ops::fill(own, a_own.parameters().grads(), 0.0);
    a_default.backward_train(dd.cview());
    a_own.backward_train(dov.cview());
    const auto& cd = std::as_const(a_default.parameters());
    const auto& co = std::as_const(a_own.parameters());
    const std::vector<double> g_default = cpdiff::ops::to_host(gpu{}, cd.grads());
    const std::vector<double> g_own = cpdiff::ops::to_host(own, co.grads());
    require_close(g_own, g_default.data(), g_default.size(), "style_autoencoder gradients on its own stream");
  }
  REQUIRE(cudaStreamDestroy(s) == cudaSuccess);
}
