// Whole-model steps at the sizes of SPEC.md's medium / BERT r=1 case (issue 4), cpu backend:
//   parameter autoencoder pdiff_medium, n = 73,728 -> latent [4, 117]: one training step (forward_train,
//   MSE, backward_train, AdamW) at batch 16 (p-diff trains it at batch 200; figures scale ~linearly);
//   p-diff U-Net (64..512 channels), latent [4, 117] + condition 512 (sequence 980): one DDPM training step
//   at batch 16, and one sampling step (a denoiser forward) at batch 10;
// and the example's small configurations (examples/cond_pdiff_fashion.cpp), n = 3,688.
// bench_gpu.cu times the same steps (benchmarks/model_steps.hpp) on the cuda backend.
#include <cpdiff/cpdiff.hpp>

#include "model_steps.hpp"

int main(int argc, char** argv) {
  // As the programs run (core/openmp_wait.hpp); benchmarks/contention.sh overrides it with --env.
  cpdiff::bound_openmp_spin_wait(argv);
  cpdiff::bench::register_model_steps<cpdiff::cpu>("cpu", [] {});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
