// The backend boundary (issue 12): the CUDA kernels compile without the CPU ones. CTest compiles this file with
// nvcc and only include/ on the path (no Eigen, no xtensor): a CUDA kernel header that reached a backend/cpu/
// header, or Eigen, fails the build here.
#include "cpdiff/backend/cuda.cuh"
#ifdef EIGEN_CORE_H
#error "Eigen reached a CUDA-only translation unit"
#endif
int main() { return 0; }
