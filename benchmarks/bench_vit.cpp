// The transformer LoRA workloads (issue 13), in steady state (model built once, one warm-up step, then timed):
//   vit_finetune_step   the example's ViT (width 64, 6 layers, 4 heads, MLP 128), LoRA r = 16 on query/value,
//                       batch 128: forward, cross-entropy, backward (dx through every layer, dA / dB), AdamW
//   vit_pretrain_step   the same with every base parameter trainable (the base's pre-training)
//   vit_forward         batch 256, no gradients (how checkpoints and generated LoRAs are evaluated)
//   attention           one multi_head_attention<64, 4> on [128, 17, 64]: forward, forward + backward
// FLOP/s counts 2 per multiply-add of the matrix products (projections, scores, P V, patch embedding, classifier);
// a backward counts as 2x its forward (1x where weights are frozen: dx only). Compare with cpdiff_bench_gemm's
// SGEMM ceiling on the same machine.
#include <cpdiff/cpdiff.hpp>

#include "bench_support.hpp"

using namespace cpdiff;

namespace {

struct bench_vit_config {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 64, depth = 6, heads = 4, mlp_dim = 128,
                               classes = 10;
};
using bench_model = models::peft_classifier<models::vit<bench_vit_config>>;
using C = bench_vit_config;
constexpr std::size_t tokens = (C::image / C::patch) * (C::image / C::patch) + 1;

// Multiply-adds of one image's forward.
double vit_macs_per_image() {
  const double D = C::dim, L = tokens, M = C::mlp_dim;
  const double layer = L * (4 * D * D + 2 * D * M) + 2 * L * L * D;
  return double(C::depth) * layer + (L - 1) * D * C::patch * C::patch * C::channels + D * C::classes;
}

struct batch_data {
  tensor<float, cpu> x;
  tensor<std::int64_t, cpu> y;
  explicit batch_data(std::size_t n) : x({n, C::channels * C::image * C::image}), y({n}) {
    ops::fill_uniform(cpu{}, x.view(), 0.f, 1.f, 3, 0);
    for (std::size_t i = 0; i < n; ++i) y.data()[i] = std::int64_t(i % C::classes);
  }
};

void train_steps(benchmark::State& state, models::lora_mode mode) {
  const std::size_t n = 128;
  bench_model m(1, {.rank = 16, .alpha = 32, .dropout = 0.1});
  m.set_mode(mode);
  batch_data d(n);
  nn::cross_entropy<float, cpu, std::int64_t> ce(cpu{});
  optim::adamw<float, cpu> opt(m.parameters(), {.lr = 1e-3});
  auto step = [&] {
    opt.zero_grad();
    ce.forward(m.forward(d.x.cview()), d.y.cview());
    m.backward(ce.backward());
    opt.step();
  };
  step();  // warm-up: every buffer allocated
  for (auto _ : state) step();
  const double backward = mode == models::lora_mode::finetune ? 1.0 : 2.0;
  bench::set_flops(state, 2.0 * (1.0 + backward) * vit_macs_per_image() * double(n));
}

void BM_vit_finetune_step(benchmark::State& state) { train_steps(state, models::lora_mode::finetune); }
void BM_vit_pretrain_step(benchmark::State& state) { train_steps(state, models::lora_mode::pretrain); }

void BM_vit_forward(benchmark::State& state) {
  const std::size_t n = 256;
  bench_model m(1, {.rank = 16, .alpha = 32});
  m.set_training(false);
  batch_data d(n);
  m.forward(d.x.cview());
  for (auto _ : state) benchmark::DoNotOptimize(m.forward(d.x.cview()).data());
  bench::set_flops(state, 2.0 * vit_macs_per_image() * double(n));
}

template <bool Backward>
void BM_attention(benchmark::State& state) {
  const std::size_t n = 128, L = tokens, D = C::dim;
  parameter_store<float, cpu> ps;
  rng g{1, 0};
  nn::multi_head_attention<C::dim, C::heads> att(ps, "attention", g);
  tensor<float, cpu> x({n, L, D}), dy({n, L, D});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, dy.view(), 0.f, 1.f, 1, 1);
  att.forward(x.cview());
  if constexpr (Backward) att.backward(dy.cview());
  for (auto _ : state) {
    benchmark::DoNotOptimize(att.forward(x.cview()).data());
    if constexpr (Backward) benchmark::DoNotOptimize(att.backward(dy.cview()).data());
  }
  const double macs = double(n) * (4.0 * L * D * D + 2.0 * L * L * D);
  bench::set_flops(state, 2.0 * (Backward ? 3.0 : 1.0) * macs);
}

}  // namespace

BENCHMARK(BM_vit_finetune_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_pretrain_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention<false>)->Unit(benchmark::kMillisecond)->UseRealTime()->Name("BM_attention/forward");
BENCHMARK(BM_attention<true>)->Unit(benchmark::kMillisecond)->UseRealTime()->Name("BM_attention/forward_backward");
