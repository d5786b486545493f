#pragma once
// The comparison the GPU tests make of a tensor against its CPU reference (host code, no CUDA):
//   max |got - want| <= rtol * max |want| + floor
// over the whole tensor, reporting the worst element. `floor` is an absolute allowance for tensors whose
// exact value is 0 and whose computed value is rounding alone (a conv bias just before a BatchNorm or
// InstanceNorm, which removes it); with floor 0 a reference of all zeros is refused (it would prove nothing).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace cpdiff::testing {

template <class G, class W>
void require_close_to(const std::vector<G>& got, const W* want, std::size_t n, const std::string& what, double rtol,
                      double floor = 0) {
  INFO(what);
  REQUIRE(got.size() == n);
  double max_ref = 0, max_diff = 0;
  std::size_t worst = 0;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(double(got[i]));
    max_ref = std::max(max_ref, std::abs(double(want[i])));
    const double d = std::abs(double(got[i]) - double(want[i]));
    if (d > max_diff) max_diff = d, worst = i;
  }
  INFO("max |gpu - cpu| = " << max_diff << " at element " << worst << " (gpu " << (n ? double(got[worst]) : 0.0)
                            << ", cpu " << (n ? double(want[worst]) : 0.0) << "), max |cpu| = " << max_ref << ", " << n
                            << " elements, rtol " << rtol << ", floor " << floor);
  REQUIRE(finite);
  REQUIRE((max_ref > 0 || floor > 0));
  CHECK(max_diff <= rtol * max_ref + floor);
}

}  // namespace cpdiff::testing
