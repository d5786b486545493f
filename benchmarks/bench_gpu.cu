// The workloads of bench_models.cpp on both backends, side by side (issue 6): one training step of the
// p-diff medium autoencoder (n = 73,728, batch 16), one DDPM training step and one sampling step of the
// p-diff U-Net (latent [4, 117] + condition 512). benchmarks/torch_reference.py times the same in PyTorch.
// Without a GPU the cuda cases report an error ("no CUDA device") and the cpu cases still run.
#include "cpdiff/cpdiff_cuda.cuh"
#include "cpdiff/diffusion/ddpm_objective.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "cpdiff/nn/losses.hpp"
#include "cpdiff/optim/adamw.hpp"

#include <cuda_runtime.h>

#include "bench_support.hpp"

namespace cp = cpdiff;

template <class B>
bool ready(benchmark::State& state) {
  if constexpr (std::is_same_v<B, cp::cuda>) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      state.SkipWithError("no CUDA device");
      return false;
    }
  }
  return true;
}
template <class B>
void sync() {
  if constexpr (std::is_same_v<B, cp::cuda>) CPDIFF_CUDA_CHECK(cudaDeviceSynchronize());
}

template <class B>
static void BM_ae_medium_train_step(benchmark::State& state) {
  if (!ready<B>(state)) return;
  constexpr std::size_t n = 73728, batch = 16;
  cp::models::pdiff_autoencoder<cp::models::pdiff_medium, float, B> ae(n, 1);
  cp::optim::adamw<float, B> opt(ae.parameters());
  cp::nn::mse_loss<float, B> mse;
  cp::tensor<float, B> x({batch, n});
  fill_normal(B{}, x.view(), 0.f, 1.f, 1, 0);
  cp::rng g{2, 0};
  for (auto _ : state) {
    opt.zero_grad();
    auto y = ae.forward_train(x.cview(), g);
    benchmark::DoNotOptimize(mse.forward(y, x.cview()));
    ae.backward_train(mse.backward());
    opt.step();
    sync<B>();
  }
  state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

template <class B, bool Train>
static void BM_unet_step(benchmark::State& state) {
  if (!ready<B>(state)) return;
  const std::size_t batch = Train ? 16 : 10;
  cp::models::pdiff_unet<cp::models::pdiff_unet_default, cp::models::learned, float, B> net({4, 117}, 512, 1000, 1);
  cp::optim::adamw<float, B> opt(net.parameters());
  cp::diffusion::ddpm_objective<float, B> obj(cp::diffusion::noise_schedule(1000));
  cp::tensor<float, B> z0({batch, 4, 117}), c({batch, 512});
  fill_uniform(B{}, z0.view(), -1.f, 1.f, 1, 0);
  fill_normal(B{}, c.view(), 0.f, 1.f, 1, 1);
  cp::rng g{3, 0};
  for (auto _ : state) {
    auto [xt, t] = obj.prepare(z0.cview(), g);
    auto eps = net.forward(xt, t, c.cview());
    if constexpr (Train) {
      opt.zero_grad();
      auto lg = obj.loss_and_grad(eps);
      net.backward(lg.d_eps_hat);
      opt.step();
    }
    sync<B>();
  }
  state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_ae_medium_train_step<cp::cpu>)->Name("ae_medium_train_step/cpu")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ae_medium_train_step<cp::cuda>)->Name("ae_medium_train_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet_step<cp::cpu, true>)->Name("unet_paper_train_step/cpu")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet_step<cp::cuda, true>)->Name("unet_paper_train_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet_step<cp::cpu, false>)->Name("unet_paper_sampling_step/cpu")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unet_step<cp::cuda, false>)->Name("unet_paper_sampling_step/cuda")->Unit(benchmark::kMillisecond)->UseRealTime();
