#pragma once
// How many OpenMP threads a CPU kernel runs on: one per thread_grain units of its work (5-15 us of element-wise
// work each), so none below parallel_grain, at most the OpenMP maximum, and one inside a parallel region. A small
// problem stays on one thread and a large one takes them all, so more cores never make a kernel slower (on
// 2 cores this is the old rule: two threads from parallel_grain on). Kernels write
//   #pragma omp parallel for num_threads(team_for(n)) if (team_for(n) > 1)
#include <cstddef>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cpdiff::ops {

// Units of work (elements) from which a loop runs on more than one thread, and per thread.
inline constexpr std::ptrdiff_t parallel_grain = 1 << 15;
inline constexpr std::ptrdiff_t thread_grain = parallel_grain / 2;

inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int thread_num() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline bool in_parallel() {
#if defined(_OPENMP)
  return omp_in_parallel() != 0;
#else
  return true;
#endif
}

// The team for `work` units: work / thread_grain threads, at least 1 and at most max_threads(); 1 when
// called inside a parallel region (no nested teams).
template <class I>
int team_for(I work) {
  static_assert(std::is_integral_v<I>, "cpdiff::ops::team_for: the work is a count of elements");
  if constexpr (std::is_signed_v<I>) {
    if (work <= 0) return 1;
  }
  const auto wanted = static_cast<std::size_t>(work) / static_cast<std::size_t>(thread_grain);
  if (wanted <= 1 || in_parallel()) return 1;
  const int most = max_threads();
  return wanted < static_cast<std::size_t>(most) ? static_cast<int>(wanted) : most;
}

}  // namespace cpdiff::ops
