// The workloads of bench_models.cpp (benchmarks/model_steps.hpp) on the cuda backend (issue 6): one training
// step of the p-diff medium autoencoder (n = 73,728, batch 16), one DDPM training step and one sampling step
// of the p-diff U-Net (latent [4, 117] + condition 512), and the example's small configurations, each in
// fp32 and with bf16 matrix products (/cuda_bf16). Each step ends with a device synchronisation. The cpu
// figures come from cpdiff_bench_models (compiled by the C++ compiler, see model_steps.hpp);
// benchmarks/torch_reference.py times the same in PyTorch (fp32 and under bf16 autocast).
// Without a GPU the program says so and exits with 77.
#include "cpdiff/cpdiff_cuda.cuh"

#include <cuda_runtime.h>

#include <cstdio>

#include "model_steps.hpp"

int main(int argc, char** argv) {
  int devices = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 77;
  }
  const auto sync = [] { CPDIFF_CUDA_CHECK(cudaDeviceSynchronize()); };
  cpdiff::bench::register_model_steps<cpdiff::gpu>("cuda", sync);
  // the same steps with bf16 tensor-core matrix products (float storage and accumulation)
  cpdiff::bench::register_model_steps<cpdiff::gpu>("cuda_bf16", sync, cpdiff::matmul_precision::bf16);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
