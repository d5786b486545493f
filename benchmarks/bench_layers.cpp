// Forward and forward+backward of the layers at the sizes of the paper's models (SPEC.md):
//   conv1d / conv_transpose1d 256 -> 256 channels, kernel 5, length ~3000 (p-diff medium decoder, BERT r=1)
//   conv1d 4 -> 4 channels, kernel 5, length ~74,000 (p-diff medium encoder's first blocks)
//   conv1d 256 -> 512, kernel 3, length 980 (p-diff U-Net at latent [4, 117] + condition 512), by im2col + GEMM
//   and by Winograd F(4, 3) (backend/cpu/winograd.hpp; the automatic choice there), same run
// FLOP counts are the multiply-adds of the direct formulation (2 per MAC; Winograd's rate is thus an effective
// one, it does half of them); backward = 2x forward (dW and dx).
#include <cpdiff/cpdiff.hpp>
#include <cpdiff/nn/conv1d.hpp>
#include <cpdiff/nn/conv_transpose1d.hpp>

#include "bench_support.hpp"

using namespace cpdiff;

template <class Layer, bool Backward>
static void run_layer(benchmark::State& state, shape x_shape, double macs,
                      conv_algorithm algo = conv_algorithm::automatic) {
  parameter_store<float, cpu> ps;
  rng g{1};
  Layer layer(ps, "l", g);
  layer.set_algorithm(algo);
  tensor<float, cpu> x(x_shape);
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 1, 0);
  auto y = layer.forward(x.cview());  // warm-up: buffers allocated once
  tensor<float, cpu> dy(y.shape());
  ops::fill_normal(cpu{}, dy.view(), 0.f, 1.f, 1, 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(layer.forward(x.cview()).data());
    if constexpr (Backward) benchmark::DoNotOptimize(layer.backward(dy.cview()).data());
  }
  bench::set_flops(state, (Backward ? 3.0 : 1.0) * 2.0 * macs);
}

// conv1d: MACs = N * Cout * Lout * Cin * K
template <std::size_t Cin, std::size_t Cout, std::size_t K, std::size_t Stride, std::size_t Pad, bool Backward>
static void BM_conv1d(benchmark::State& state) {
  using L = nn::conv1d<Cin, Cout, K, float, cpu, Stride, Pad>;
  const auto n = static_cast<std::size_t>(state.range(0)), len = static_cast<std::size_t>(state.range(1));
  run_layer<L, Backward>(state, {n, Cin, len}, double(n) * Cout * L::out_length(len) * Cin * K);
}
// The same with the algorithm as the third argument: 1 im2col + GEMM, 3 Winograd (conv_algorithm's values)
template <std::size_t Cin, std::size_t Cout, std::size_t K, std::size_t Stride, std::size_t Pad, bool Backward>
static void BM_conv1d_algo(benchmark::State& state) {
  using L = nn::conv1d<Cin, Cout, K, float, cpu, Stride, Pad>;
  const auto n = static_cast<std::size_t>(state.range(0)), len = static_cast<std::size_t>(state.range(1));
  const auto algo = static_cast<conv_algorithm>(state.range(2));
  state.SetLabel(algo == conv_algorithm::winograd ? "winograd" : "gemm");
  run_layer<L, Backward>(state, {n, Cin, len}, double(n) * Cout * L::out_length(len) * Cin * K, algo);
}
// conv_transpose1d: MACs = N * Cin * L * Cout * K
template <std::size_t Cin, std::size_t Cout, std::size_t K, std::size_t Stride, bool Backward>
static void BM_conv_transpose1d(benchmark::State& state) {
  using L = nn::conv_transpose1d<Cin, Cout, K, float, cpu, Stride, 0>;
  const auto n = static_cast<std::size_t>(state.range(0)), len = static_cast<std::size_t>(state.range(1));
  run_layer<L, Backward>(state, {n, Cin, len}, double(n) * Cin * len * Cout * K);
}

#define CPDIFF_BENCH(fn, ...)                                                                  \
  BENCHMARK(fn<__VA_ARGS__, false>)->Unit(benchmark::kMillisecond)->UseRealTime()->Name(#fn "<" #__VA_ARGS__ ">/forward")
#define CPDIFF_BENCH_FB(fn, ...)                                                               \
  BENCHMARK(fn<__VA_ARGS__, true>)->Unit(benchmark::kMillisecond)->UseRealTime()->Name(#fn "<" #__VA_ARGS__ ">/forward_backward")

// 256 -> 256, k5, stride 1, pad 4, L = 2949 (medium decoder, n = 73,728); batch 4
CPDIFF_BENCH(BM_conv1d, 256, 256, 5, 1, 4)->Args({4, 2949});
CPDIFF_BENCH_FB(BM_conv1d, 256, 256, 5, 1, 4)->Args({4, 2949});
// 256 -> 256 transposed, k5, stride 5, L = 589 -> 2945
CPDIFF_BENCH(BM_conv_transpose1d, 256, 256, 5, 5)->Args({4, 589});
CPDIFF_BENCH_FB(BM_conv_transpose1d, 256, 256, 5, 5)->Args({4, 589});
// 4 -> 4, k5, stride 1, pad 1, L = 73,750 (medium encoder block 0); batch 4
CPDIFF_BENCH(BM_conv1d, 4, 4, 5, 1, 1)->Args({4, 73750});
CPDIFF_BENCH_FB(BM_conv1d, 4, 4, 5, 1, 1)->Args({4, 73750});
// 4 -> 4, k5, stride 5 (the folding conv)
CPDIFF_BENCH(BM_conv1d, 4, 4, 5, 5, 0)->Args({4, 73748});
CPDIFF_BENCH_FB(BM_conv1d, 4, 4, 5, 5, 0)->Args({4, 73748});
// U-Net: 256 -> 512, k3, pad 1, L = 980, batch 16: im2col + GEMM (1), then Winograd F(4, 3) (3)
CPDIFF_BENCH(BM_conv1d_algo, 256, 512, 3, 1, 1)->Args({16, 980, 1})->Args({16, 980, 3});
CPDIFF_BENCH_FB(BM_conv1d_algo, 256, 512, 3, 1, 1)->Args({16, 980, 1})->Args({16, 980, 3});
