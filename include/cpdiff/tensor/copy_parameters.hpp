#pragma once
// copy_parameters(src, dst): copies every parameter value of one store into another with the same
// entries (names and shapes, in the same order), across backends and value types. A CPU model and a GPU
// model built from the same code then hold the same weights:
//   parameter_store<float, cpu> host;   nn::linear<3, 4, float, cpu>  a(host, "fc", g);
//   parameter_store<float, cuda> dev;   nn::linear<3, 4, float, cuda> b(dev, "fc", g);
//   copy_parameters(host, dev);
// Host-side code: the values go through a host vector (to_host / from_host of each backend, found by
// argument-dependent lookup, so the cuda ones are used when <cpdiff/cpdiff_cuda.cuh> is included).
// Gradients, and which entries are trainable, are not copied.
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff {

// Throws config_error when the entry lists differ (count or a name), shape_error when a shape differs.
template <class T1, class B1, class T2, class B2>
void check_same_entries(const parameter_store<T1, B1>& src, const parameter_store<T2, B2>& dst, const char* where) {
  CPDIFF_CHECK(src.count() == dst.count(), config_error, where, "source has ", src.count(), " parameters, destination ",
               dst.count());
  for (std::size_t i = 0; i < src.count(); ++i) {
    const param_entry& a = src.entries()[i];
    const param_entry& b = dst.entries()[i];
    CPDIFF_CHECK(a.name == b.name, config_error, where, "parameter ", i, " is '", a.name, "' in the source but '",
                 b.name, "' in the destination");
    CPDIFF_CHECK(a.shape == b.shape, shape_error, where, "parameter '", a.name, "' has shape ", a.shape,
                 " in the source but ", b.shape, " in the destination");
  }
}

template <class T1, class B1, class T2, class B2>
void copy_parameters(const parameter_store<T1, B1>& src, parameter_store<T2, B2>& dst) {
  check_same_entries(src, dst, "copy_parameters");
  if (src.size() == 0) return;
  const std::vector<T1> host = to_host(src.backend(), src.values());
  if constexpr (std::is_same_v<T1, T2>) {
    from_host(dst.backend(), std::span<const T2>(host), dst.values());
  } else {
    const std::vector<T2> converted(host.begin(), host.end());
    from_host(dst.backend(), std::span<const T2>(converted), dst.values());
  }
}

}  // namespace cpdiff
