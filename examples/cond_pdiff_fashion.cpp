// Cond P-Diff on Fashion-MNIST, end to end, on the CPU: the README's main job. The program is in
// cond_pdiff_fashion.hpp; cond_pdiff_fashion_cuda.cu runs the same program with the models on a GPU.
#include "cond_pdiff_fashion.hpp"

int main(int argc, char** argv) {
  cpdiff::bound_openmp_spin_wait(argv);  // fast beside another busy program (core/openmp_wait.hpp)
  return fashion_main<cpdiff::cpu>(argc, argv);
}
