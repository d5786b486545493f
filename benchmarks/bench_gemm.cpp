// SGEMM through the CPU backend's gemm (Eigen): the machine's practical ceiling for the layer figures.
#include <cpdiff/cpdiff.hpp>

#include "bench_support.hpp"

using namespace cpdiff;

static void BM_sgemm(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  tensor<float, cpu> a({n, n}), b({n, n}), c({n, n});
  ops::fill_normal(cpu{}, a.view(), 0.f, 1.f, 1, 0);
  ops::fill_normal(cpu{}, b.view(), 0.f, 1.f, 1, 1);
  for (auto _ : state) {
    ops::gemm(cpu{}, ops::trans::no, ops::trans::no, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  bench::set_flops(state, 2.0 * n * n * n);
}
BENCHMARK(BM_sgemm)->Arg(256)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

// Linear layer at the U-Net's concat-path size: Linear(4L + 512 -> 4L), L = 117 (BERT r=1 latent [4, 117]).
template <bool Backward>
static void BM_linear(benchmark::State& state) {
  constexpr std::size_t in = 4 * 117 + 512, out = 4 * 117;
  const auto batch = static_cast<std::size_t>(state.range(0));
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::linear<in, out> fc(ps, "fc", g);
  tensor<float, cpu> x({batch, in});
  ops::fill_normal(cpu{}, x.view(), 0.f, 1.f, 1, 0);
  for (auto _ : state) {
    auto y = fc.forward(x.cview());
    if constexpr (Backward) benchmark::DoNotOptimize(fc.backward(y).data());
    benchmark::DoNotOptimize(y.data());
  }
  bench::set_flops(state, (Backward ? 3.0 : 1.0) * 2.0 * batch * in * out);
}
BENCHMARK(BM_linear<false>)->Name("BM_linear_forward")->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_linear<true>)->Name("BM_linear_forward_backward")->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();
