// Cond P-Diff on Fashion-MNIST, end to end, on the CPU: the README's main job. The program is in
// cond_pdiff_fashion.hpp; cond_pdiff_fashion_cuda.cu runs the same program with the models on a GPU.
// Built with MPI (CMake found it: CPDIFF_EXAMPLE_MPI), `mpirun -np K` runs it data-parallel, unchanged.
#include "cond_pdiff_fashion.hpp"

#if defined(CPDIFF_EXAMPLE_MPI)
#include <cpdiff/train/mpi_communicator.hpp>
#endif

int main(int argc, char** argv) {
  cpdiff::bound_openmp_spin_wait(argv);  // fast beside another busy program (core/openmp_wait.hpp)
#if defined(CPDIFF_EXAMPLE_MPI)
  // a failing rank ends every rank (mpi_session::run), with the program's exit status
  if (cpdiff::train::launched_by_mpirun())
    return cpdiff::train::mpi_session::run(argc, argv, [&](cpdiff::train::mpi_communicator& comm) {
      return fashion_main<cpdiff::cpu>(argc, argv, &comm);
    });
#else
  if (cpdiff::train::launched_by_mpirun())
    std::cerr << "cond_pdiff_fashion: started by mpirun, but built without MPI: each rank runs alone\n";
#endif
  return fashion_main<cpdiff::cpu>(argc, argv);
}
