// Cond P-Diff on Fashion-MNIST, end to end, with the parameter autoencoder, the denoiser and the condition
// encoder trained and sampled on a GPU (cpdiff::cuda); the LoRA collection and the evaluation of every LoRA
// stay on the CPU. Same flags and outputs as cpdiff_cond_pdiff_fashion (cond_pdiff_fashion.hpp).
// Host code in a .cu file is compiled without Eigen's SIMD (EIGEN_GPUCC), so the CPU stages run slower here
// than in the CPU program.
#include <cpdiff/cpdiff_cuda.cuh>

#include "cond_pdiff_fashion.hpp"

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::cerr << "error: cond_pdiff_fashion_cuda: no CUDA device (use cpdiff_cond_pdiff_fashion on the CPU)\n";
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::cout << "models on " << prop.name << " (cpdiff::cuda)\n";
  return fashion_main<cpdiff::cuda>(argc, argv);
}
