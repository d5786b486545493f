// Cond P-Diff on Fashion-MNIST, end to end, with the parameter autoencoder, the denoiser and the condition
// encoder trained and sampled on a GPU (cpdiff::gpu); the LoRA collection and the evaluation of every LoRA
// stay on the CPU. Same flags and outputs as cpdiff_cond_pdiff_fashion (fashion/program.hpp).
// Built with EIGEN_NO_CUDA (cmake/cpdiff_cuda.cmake), so the CPU stages keep Eigen's SIMD in this .cu file.
#include <cpdiff/cpdiff_cuda.cuh>

#include "fashion/program.hpp"

int main(int argc, char** argv) {
  cpdiff::bound_openmp_spin_wait(argv);  // the host parts: fast beside another busy program
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::cerr << "error: cond_pdiff_fashion_cuda: no CUDA device (use cpdiff_cond_pdiff_fashion on the CPU)\n";
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::cout << "models on " << prop.name << " (cpdiff::gpu)\n";
  return fashion::fashion_main<cpdiff::gpu>(argc, argv);
}
