#pragma once
// Zero-copy bridges between cpdiff's host memory and xtensor, for the user-facing edges (conditions, latents,
// generated vectors, a model's weights) where research code wants xtensor's expressions.
//   auto xv = as_xtensor(t.view());            // xt adaptor over a host tensor's memory: writes go to t
//   auto w  = as_xtensor(ps.value(id));        // a parameter, in place
//   xt::xtensor<float, 2> a = ...;
//   tensor_view<const float> v = as_view(a);   // a cpdiff view of a (row-major) xtensor container
// Only host memory: a GPU tensor has no host address (copy it with ops::to_host first). Both directions share
// memory, so the owner must outlive the other side. as_view() refuses a column-major container (shape_error):
// cpdiff's views are row-major.
#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff {

// A row-major xtensor adaptor over the view's elements (no copy). Writable when T is not const.
template <class T>
auto as_xtensor(tensor_view<T, host_space> v) {
  std::vector<std::size_t> dims(v.shape().begin(), v.shape().end());
  return xt::adapt(v.data(), v.size(), xt::no_ownership(), dims);
}

// A cpdiff view of a row-major xtensor container (xt::xarray, xt::xtensor) or adaptor, sharing its memory.
template <class E>
auto as_view(E& e) {
  using T = std::remove_reference_t<decltype(*e.data())>;
  CPDIFF_CHECK(e.layout() == xt::layout_type::row_major || e.dimension() <= 1, shape_error, "as_view",
               "the xtensor container is not row-major (cpdiff views are): copy it into a row-major "
               "xt::xarray first");
  CPDIFF_CHECK(e.dimension() <= shape::max_rank, shape_error, "as_view", "rank ", e.dimension(), " exceeds ",
               shape::max_rank);
  return tensor_view<T, host_space>(e.data(), shape::from_range(e.shape().begin(), e.shape().end()));
}

}  // namespace cpdiff
