#pragma once
// Shared helpers for the benchmarks: FLOP/s counters.
#include <benchmark/benchmark.h>

namespace cpdiff::bench {

// Reports FLOP/s (as "FLOP/s", a rate over the iterations) for `flops` floating-point operations per iteration.
inline void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

}  // namespace cpdiff::bench
