#pragma once
// xtensor adaptors for npy_array: loading and saving xt::xarray through cpdiff's own .npy reader and
// writer (checked headers, clear errors, atomic writes). Files are compatible with xt::load_npy and
// xt::dump_npy for the dtypes both support.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xeval.hpp>

#include "cpdiff/io/npy.hpp"

namespace cpdiff::io {

namespace detail {
// xtensor computes an array's strides as signed products of its trailing dimensions (std::ptrdiff_t,
// xt::detail::compute_strides), and each must fit: a zero-element shape such as (0, 2^63, 2^63), which the .npy
// reader accepts (it holds no values), would overflow them.
inline void check_xtensor_shape(const std::vector<std::size_t>& shape, const char* where, const std::string& source) {
  constexpr auto most = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  std::size_t n = 1;
  for (std::size_t i = shape.size(); i-- > 0 && n != 0;) {
    if (!checked_mul(n, shape[i], n) || n > most) {
      std::string dims;
      for (std::size_t k = 0; k < shape.size(); ++k) dims += (k ? ", " : "") + std::to_string(shape[k]);
      throw_error<shape_error>(where, source.empty() ? "" : "'" + source + "': ", "shape (", dims,
                               ") cannot be an xtensor array: the product of its dimensions from axis ", i,
                               " on exceeds 2^63 - 1 (xtensor's strides are std::ptrdiff_t); use io::load_npy");
    }
  }
}
}  // namespace detail

template <class T>
xt::xarray<T> to_xtensor(const npy_array<T>& a) {
  detail::check_xtensor_shape(a.shape, "io::to_xtensor", "");
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
  const npy_array<T> a = load_npy<T>(path);
  detail::check_xtensor_shape(a.shape, "io::load_npy_xarray", path.string());
  return to_xtensor(a);
}

template <class E>
void save_npy_xtensor(const std::filesystem::path& path, const xt::xexpression<E>& e) {
  const auto a = from_xtensor(e);
  save_npy(path, a);
}

}  // namespace cpdiff::io
