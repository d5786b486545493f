#pragma once
// xtensor adaptors for npy_array: loading and saving xt::xarray through cpdiff's own .npy reader and
// writer (checked headers, clear errors, atomic writes). Files are compatible with xt::load_npy and
// xt::dump_npy for the dtypes both support.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <span>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xeval.hpp>

#include "cpdiff/io/npy.hpp"

namespace cpdiff::io {

template <class T>
xt::xarray<T> to_xtensor(const npy_array<T>& a) {
  xt::xarray<T> out(a.shape);  // row-major by default
  std::copy(a.data.begin(), a.data.end(), out.begin());
  return out;
}

// Any xtensor expression, evaluated in row-major order.
template <class E>
auto from_xtensor(const xt::xexpression<E>& e) {
  using T = typename E::value_type;
  const xt::xarray<T, xt::layout_type::row_major> a = e.derived_cast();
  npy_array<T> out;
  out.shape.assign(a.shape().begin(), a.shape().end());
  out.data.assign(a.begin(), a.end());
  return out;
}

template <class T>
xt::xarray<T> load_npy_xarray(const std::filesystem::path& path) {
  return to_xtensor(load_npy<T>(path));
}

template <class E>
void save_npy_xtensor(const std::filesystem::path& path, const xt::xexpression<E>& e) {
  const auto a = from_xtensor(e);
  save_npy(path, a);
}

}  // namespace cpdiff::io
