#pragma once
// The whole-model steps timed by bench_models.cpp (cpu backend, compiled by the C++ compiler) and
// bench_gpu.cu (cuda backend), written once over the backend B. The CPU figures come from the .cpp on
// purpose: host code compiled by nvcc gets no Eigen SIMD unless EIGEN_NO_CUDA is defined (Eigen's
// ConfigureVectorization.h turns its vectorisation off whenever EIGEN_GPUCC is defined, host pass included),
// which made the same CPU step 5-10x slower when it was timed from a .cu file. Our CUDA programs now define it
// (cmake/cpdiff_cuda.cmake), but a .cpp keeps the CPU figures free of nvcc's host compilation altogether.
//   `sync` runs after every step, inside the timed loop: a device synchronisation for asynchronous backends.
#include <array>
#include <chrono>
#include <cstddef>

#include "bench_support.hpp"
#include "cpdiff/backend/matmul_precision.hpp"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/nn/losses.hpp"
#include "cpdiff/optim/adamw.hpp"
#include "cpdiff/pipeline/generator_config.hpp"

namespace cpdiff::bench {

// Steady state: the model is built before the timed loop, and one step runs untimed first (buffers
// allocated, pages faulted in); that first call's time is reported apart as the counter first_ms.
template <class Step>
void timed_steps(benchmark::State& state, std::size_t batch, Step&& step) {
  const auto t0 = std::chrono::steady_clock::now();
  step();
  state.counters["first_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (auto _ : state) step();
  state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// One parameter-autoencoder training step: forward_train (both noises), MSE, backward_train, AdamW.
template <class AE, class B, class Sync>
void ae_train_step(benchmark::State& state, AE& ae, std::size_t n, std::size_t batch, Sync sync) {
  optim::adamw<float, B> opt(ae.parameters());
  nn::mse_loss<float, B> mse(ae.parameters());
  tensor<float, B> x({batch, n});
  ops::fill_normal(B{}, x.view(), 0.f, 1.f, 1, 0);
  rng g{2, 0};
  timed_steps(state, batch, [&] {
    opt.zero_grad();
    auto y = ae.forward_train(x.cview(), g);
    benchmark::DoNotOptimize(mse.forward(y, x.cview()));
    ae.backward_train(mse.backward());
    opt.step();
    sync();
  });
}
template <class Cfg, class B, class Sync>
void ae_train_step(benchmark::State& state, std::size_t n, std::size_t batch, Sync sync) {
  models::pdiff_autoencoder<Cfg, float, B> ae(n, 1);
  ae_train_step<decltype(ae), B>(state, ae, n, batch, sync);
}
// The example's autoencoder (pipeline::generator_autoencoder with its options: Tanh latent, clamp, linear
// skip) on LoRA vectors of n parameters: 3,688 for the MLP base, 24,576 for the ViT base (there also
// models::style_vit, the same channels at stride 4).
template <class Cfg, class B, class Sync>
void style_ae_train_step(benchmark::State& state, std::size_t n, std::size_t batch, Sync sync) {
  models::style_autoencoder<Cfg, float, B> ae(
      n, 1, {.input_noise = 0.001, .latent_noise = 0.1, .clamp_latent = true, .tanh_latent = true, .linear_skip = true});
  ae_train_step<decltype(ae), B>(state, ae, n, batch, sync);
}

// One p-diff U-Net step: a DDPM training step (noise, forward, loss, backward, AdamW) when `train`, else
// one sampling step's denoiser forward.
template <class Cfg, class B, class Sync>
void unet_step(benchmark::State& state, shape latent, std::size_t cond, std::size_t batch, bool train, Sync sync) {
  models::pdiff_unet<Cfg, models::learned, float, B> net(latent, cond, 1000, 1);
  optim::adamw<float, B> opt(net.parameters());
  diffusion::ddpm_objective<float, B> obj(diffusion::noise_schedule(1000));
  tensor<float, B> z0({batch, latent[0], latent[1]}), c({batch, cond});
  ops::fill_uniform(B{}, z0.view(), -1.f, 1.f, 1, 0);
  ops::fill_normal(B{}, c.view(), 0.f, 1.f, 1, 1);
  rng g{3, 0};
  timed_steps(state, batch, [&] {
    auto [xt, t] = obj.prepare(z0.cview(), g);
    auto eps = net.forward(xt, t, c.cview());
    if (train) {
      opt.zero_grad();
      auto lg = obj.loss_and_grad(eps);
      net.backward(lg.d_eps_hat);
      opt.step();
    }
    sync();
  });
}

// The example's configurations (examples/cond_pdiff_fashion.cpp): the MLP base's n = 3,688.
struct example_ae {
  static constexpr std::size_t fold = 3, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{4, 4, 4, 4}, dec{4, 64, 64, 8};
};
struct example_unet {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 64, 128};
  static constexpr std::size_t kernel = 3;
};

// The eight workloads, shared names: <name>/<label> in both programs. `precision` is the matmul_precision
// each runs under (bf16: the cuda backend's mixed precision; the cpu backend computes fp32 either way).
template <class B, class Sync>
void register_model_steps(const char* label, Sync sync, matmul_precision precision = matmul_precision::fp32) {
  const std::string b = std::string("/") + label;
  auto reg = [&](const std::string& name, auto fn, double min_time) {
    benchmark::RegisterBenchmark((name + b).c_str(),
                                 [=](benchmark::State& s) {
                                   const matmul_precision_scope scope(precision);
                                   fn(s);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(min_time);
  };
  reg("ae_medium_train_step", [=](benchmark::State& s) { ae_train_step<models::pdiff_medium, B>(s, 73728, 16, sync); }, 2);
  reg("unet_paper_train_step",
      [=](benchmark::State& s) { unet_step<models::pdiff_unet_default, B>(s, {4, 117}, 512, 16, true, sync); }, 2);
  reg("unet_paper_sampling_step",
      [=](benchmark::State& s) { unet_step<models::pdiff_unet_default, B>(s, {4, 117}, 512, 10, false, sync); }, 1);
  reg("ae_example_train_step", [=](benchmark::State& s) { ae_train_step<example_ae, B>(s, 3688, 64, sync); }, 1);
  reg("unet_example_train_step",
      [=](benchmark::State& s) { unet_step<example_unet, B>(s, {4, 46}, 32, 64, true, sync); }, 1);
  reg("style_ae_example_mlp_train_step",
      [=](benchmark::State& s) { style_ae_train_step<pipeline::generator_autoencoder, B>(s, 3688, 64, sync); }, 1);
  reg("style_ae_example_vit_train_step",
      [=](benchmark::State& s) { style_ae_train_step<pipeline::generator_autoencoder, B>(s, 24576, 64, sync); }, 2);
  reg("style_ae_vit_stride4_train_step",
      [=](benchmark::State& s) { style_ae_train_step<models::style_vit, B>(s, 24576, 64, sync); }, 2);
}

}  // namespace cpdiff::bench
