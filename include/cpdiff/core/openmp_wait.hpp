#pragma once
// Bounded spin-waiting for programs built with GCC's OpenMP (libgomp).
//   A libgomp thread that reaches a barrier spins GOMP_SPINCOUNT times (300,000 by default, milliseconds on
// today's cores) before it sleeps. When another program holds one of the cores, the thread a team waits for is
// descheduled while its partners spin on the other cores, and every parallel region costs a time slice: the
// example's autoencoder stage ran 14x slower beside one busy process on 2 cores. A short spin keeps the
// uncontended speed (a barrier is reached within microseconds) and gives the cores back when it is not.
//   libgomp reads its environment once, before main(), so the setting only takes effect in a fresh process:
// bound_openmp_spin_wait(argv), called first in main(), sets GOMP_SPINCOUNT and re-executes the program when the
// user has set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT (their choice always wins). It does nothing with
// other compilers or OpenMP runtimes (LLVM's libomp: set KMP_BLOCKTIME), or when the re-execution fails.
//   benchmarks/contention.sh measures a run alone and beside a busy process, with and without the setting.
#include <cstdlib>

#if defined(__linux__) && defined(_OPENMP) && defined(__GNUC__) && !defined(__clang__)
#include <unistd.h>
#define CPDIFF_LIBGOMP_SPIN 1
#endif

namespace cpdiff {

// Spins before a libgomp thread sleeps at a barrier: about 0.1-0.5 ms (benchmarks/contention.sh).
inline constexpr const char* bounded_gomp_spincount = "10000";

// True when this process runs with the bounded spin: set here, or by the user's own environment.
inline bool openmp_wait_is_set() { return std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT"); }

// Call first in main() (before any thread, MPI_Init or output): re-executes the program once with
// GOMP_SPINCOUNT=bounded_gomp_spincount unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set.
inline void bound_openmp_spin_wait([[maybe_unused]] char** argv) {
#if defined(CPDIFF_LIBGOMP_SPIN)
  if (openmp_wait_is_set() || argv == nullptr || argv[0] == nullptr) return;
  if (setenv("GOMP_SPINCOUNT", bounded_gomp_spincount, 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when the exec failed: carry on with libgomp's default (slower beside a busy process, not wrong).
  unsetenv("GOMP_SPINCOUNT");
#endif
}

}  // namespace cpdiff
