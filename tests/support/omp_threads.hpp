#pragma once
// Sets the OpenMP thread count for one scope and restores it after (tests of thread-count independence).
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cpdiff::testing {

struct omp_threads {
  int saved = 1;
  explicit omp_threads(int n) {
#if defined(_OPENMP)
    saved = omp_get_max_threads();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
  }
  ~omp_threads() {
#if defined(_OPENMP)
    omp_set_num_threads(saved);
#endif
  }
  omp_threads(const omp_threads&) = delete;
  omp_threads& operator=(const omp_threads&) = delete;
};

}  // namespace cpdiff::testing
