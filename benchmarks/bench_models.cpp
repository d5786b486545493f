// Whole-model steps at the sizes of SPEC.md's medium / BERT r=1 case (issue 4):
//   parameter autoencoder pdiff_medium, n = 73,728 -> latent [4, 117]: one training step (forward_train,
//   MSE, backward_train, AdamW) at batch 16 (p-diff trains it at batch 200; figures scale ~linearly);
//   p-diff U-Net (64..512 channels), latent [4, 117] + condition 512 (sequence 980): one DDPM training step
//   at batch 16, and one sampling step (a denoiser forward) at batch 10;
// and the example's small configurations (examples/cond_pdiff_fashion.cpp), n = 3,688.
#include <cpdiff/cpdiff.hpp>
#include <cpdiff/diffusion/ddpm_objective.hpp>
#include <cpdiff/models/pdiff_autoencoder.hpp>
#include <cpdiff/models/pdiff_unet.hpp>
#include <cpdiff/nn/losses.hpp>
#include <cpdiff/optim/adamw.hpp>

#include "bench_support.hpp"

using namespace cpdiff;

template <class Cfg>
static void ae_train_step(benchmark::State& state, std::size_t n, std::size_t batch) {
  models::pdiff_autoencoder<Cfg> ae(n, 1);
  optim::adamw<float, cpu> opt(ae.parameters());
  nn::mse_loss<float, cpu> mse;
  tensor<float, cpu> x({batch, n});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 1, 0);
  rng g{2, 0};
  for (auto _ : state) {
    opt.zero_grad();
    auto y = ae.forward_train(x.cview(), g);
    benchmark::DoNotOptimize(mse.forward(y, x.cview()));
    ae.backward_train(mse.backward());
    opt.step();
  }
  state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

template <class Cfg>
static void unet_step(benchmark::State& state, shape latent, std::size_t cond, std::size_t batch, bool train) {
  models::pdiff_unet<Cfg> net(latent, cond, 1000, 1);
  optim::adamw<float, cpu> opt(net.parameters());
  diffusion::ddpm_objective<float, cpu> obj(diffusion::noise_schedule(1000));
  tensor<float, cpu> z0({batch, latent[0], latent[1]}), c({batch, cond});
  ops::fill_uniform(cpu{}, z0.view(), -1.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, c.view(), 0.f, 1.f, 1, 1);
  rng g{3, 0};
  for (auto _ : state) {
    auto [xt, t] = obj.prepare(z0.cview(), g);
    auto eps = net.forward(xt, t, c.cview());
    if (train) {
      opt.zero_grad();
      auto lg = obj.loss_and_grad(eps);
      net.backward(lg.d_eps_hat);
      opt.step();
    }
    benchmark::DoNotOptimize(eps.data());
  }
  state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

struct example_ae {
  static constexpr std::size_t fold = 3, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{4, 4, 4, 4}, dec{4, 64, 64, 8};
};
struct example_unet {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 64, 128};
  static constexpr std::size_t kernel = 3;
};

static void BM_ae_medium_train_step(benchmark::State& s) { ae_train_step<models::pdiff_medium>(s, 73728, 16); }
static void BM_unet_paper_train_step(benchmark::State& s) { unet_step<models::pdiff_unet_default>(s, {4, 117}, 512, 16, true); }
static void BM_unet_paper_sampling_step(benchmark::State& s) { unet_step<models::pdiff_unet_default>(s, {4, 117}, 512, 10, false); }
static void BM_ae_example_train_step(benchmark::State& s) { ae_train_step<example_ae>(s, 3688, 64); }
static void BM_unet_example_train_step(benchmark::State& s) { unet_step<example_unet>(s, {4, 46}, 32, 64, true); }

BENCHMARK(BM_ae_medium_train_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_unet_paper_train_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_unet_paper_sampling_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_ae_example_train_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_unet_example_train_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
