// Merging LoRA adapters into their base weights (issue 17's side-by-side with PyTorch), cpu backend:
//   lora_merge_48x768x768/r:R   nn::lora_linear<768, 768, R, 16>::merge() on 48 layers, W += (16 / R) B A with
//                               W [768, 768], B [768, R], A [R, 768] (a BERT-base's 12 layers x query, key, value,
//                               attention output; or any 48 square 768-wide projections), R = 1, 4, 16.
// merge() is the library's merge path: it keeps a copy of A and B (so that unmerge() subtracts what was added,
// even if A or B change meanwhile), then runs one GEMM accumulating into W. Each iteration times the 48
// merges; the 48 unmerge() calls that restore W for the next iteration run with the timer paused.
// The PyTorch side (benchmarks/torch_reference.py) times W.addmm_(B, A, alpha=s) on the same 48 matrices.
// FLOP/s counts 2 per multiply-add of B A (48 * 768 * 768 * R); at small R the merge is bound by memory
// (each W is read and written once: 2 * 48 * 2.25 MiB per iteration), not by FLOPs.
#include <cpdiff/cpdiff.hpp>

#include <memory>
#include <ratio>
#include <string>
#include <vector>

#include "bench_support.hpp"

using namespace cpdiff;

namespace {

constexpr std::size_t width = 768, layers = 48;

template <std::size_t R>
void BM_lora_merge(benchmark::State& state) {
  using layer = nn::lora_linear<width, width, R, std::ratio<16>, float, cpu>;
  parameter_store<float, cpu> ps;
  rng g{1, 0};
  std::vector<std::unique_ptr<layer>> ls;
  for (std::size_t i = 0; i < layers; ++i) ls.push_back(std::make_unique<layer>(ps, "layer." + std::to_string(i), g));
  // B is zero in a fresh adapter; give it values, as a trained adapter has (the GEMM's cost does not depend on
  // them, but a merge of zeros would be a trivial case to benchmark).
  for (std::size_t i = 0; i < layers; ++i) ops::fill_normal(cpu{}, ls[i]->lora_B(), 0.f, 0.01f, 2, i);
  for (auto& l : ls) l->merge();  // warm-up: the copies of A and B allocated, the pages faulted in
  for (auto& l : ls) l->unmerge();
  for (auto _ : state) {
    for (auto& l : ls) l->merge();
    state.PauseTiming();
    for (auto& l : ls) l->unmerge();
    state.ResumeTiming();
  }
  bench::set_flops(state, 2.0 * double(layers) * double(width) * double(width) * double(R));
}

}  // namespace

BENCHMARK_TEMPLATE(BM_lora_merge, 1)->Unit(benchmark::kMillisecond)->UseRealTime()->Name("lora_merge_48x768x768/r:1");
BENCHMARK_TEMPLATE(BM_lora_merge, 4)->Unit(benchmark::kMillisecond)->UseRealTime()->Name("lora_merge_48x768x768/r:4");
BENCHMARK_TEMPLATE(BM_lora_merge, 16)->Unit(benchmark::kMillisecond)->UseRealTime()->Name("lora_merge_48x768x768/r:16");
