// Cond P-Diff on Fashion-MNIST, end to end, on the CPU: the README's main job. The program is in
// cond_pdiff_fashion.hpp; cond_pdiff_fashion_cuda.cu runs the same program with the models on a GPU.
#include "cond_pdiff_fashion.hpp"

int main(int argc, char** argv) { return fashion_main<cpdiff::cpu>(argc, argv); }
