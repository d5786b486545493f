// backend/cpu/threads.hpp: the team a CPU kernel's work pays for, core/openmp_wait.hpp's environment check, and the
// Philox fills giving the same numbers whatever the team.
#include <cstdlib>

#include "cpdiff/cpdiff.hpp"

using namespace cpdiff;

TEST_CASE("team_for: one thread per thread_grain of work, at most the OpenMP maximum, one when nested",
          "[tensor][threads]") {
  const std::size_t grain = static_cast<std::size_t>(ops::thread_grain);
  const int most = ops::max_threads();
  CHECK(ops::team_for(std::size_t{0}) == 1);
  CHECK(ops::team_for(std::ptrdiff_t{-5}) == 1);
  CHECK(ops::team_for(grain) == 1);
  CHECK(ops::team_for(2 * grain - 1) == 1);  // a second thread only once the work is two grains
  CHECK(2 * grain == static_cast<std::size_t>(ops::parallel_grain));
  CHECK(ops::team_for(2 * grain) == std::min(2, most));
  CHECK(ops::team_for(5 * grain) == std::min(5, most));
  CHECK(ops::team_for(1000 * grain) == most);
  int nested = -1;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    nested = ops::team_for(1000 * grain);
  }
  CHECK(nested == 1);  // inside a parallel region: no nested team
}

TEST_CASE("openmp_wait: the user's OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins", "[tensor][threads]") {
  // ctest runs this program without either variable (or with the bounded spin already set by a parent run);
  // bound_openmp_spin_wait only re-executes when neither is set, so with one set it must return at once.
  const char* old = std::getenv("GOMP_SPINCOUNT");
  const std::string saved = old ? old : "";
  REQUIRE(setenv("GOMP_SPINCOUNT", "777", 1) == 0);
  CHECK(openmp_wait_is_set());
  char arg0[] = "not-a-program";
  char* argv[] = {arg0, nullptr};
  bound_openmp_spin_wait(argv);  // returns: the variable is set, nothing is executed
  CHECK(std::string(std::getenv("GOMP_SPINCOUNT")) == "777");
  if (old)
    setenv("GOMP_SPINCOUNT", saved.c_str(), 1);
  else
    unsetenv("GOMP_SPINCOUNT");
}

TEST_CASE("fill_normal: element j is philox_normal(offset + j) bit for bit, any offset parity and thread team",
          "[tensor][threads][rng]") {
  // fill_normal makes two normals per Philox block (philox_normal_pair); a shard may start on an odd element
  const std::size_t big = 4 * static_cast<std::size_t>(ops::parallel_grain) + 3;  // several threads, odd length
  for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{5}, big})
    for (const std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{6}, std::uint64_t{1001}}) {
      tensor<float, cpu> y({n});
      ops::fill_normal(cpu{}, y.view(), 0.f, 1.f, 42, 3, offset);
      std::size_t mismatches = 0;
      for (std::size_t j = 0; j < n; ++j) mismatches += y.data()[j] != philox_normal(42, 3, offset + j);
      INFO("n " << n << ", offset " << offset);
      CHECK(mismatches == 0);
    }
  tensor<double, cpu> d({3});  // mean + stddev z, fused
  ops::fill_normal(cpu{}, d.view(), 2.0, 0.5, 7, 1, 1);
  for (std::size_t j = 0; j < 3; ++j) CHECK(d.data()[j] == std::fma(0.5, double(philox_normal(7, 1, 1 + j)), 2.0));
}
