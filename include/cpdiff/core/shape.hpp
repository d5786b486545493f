#pragma once
// shape: the dimensions of a row-major tensor, rank 0..5, stored inline (no allocation).
#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "cpdiff/core/error.hpp"

namespace cpdiff {

// A template size given at run time instead (as Eigen's Dynamic, std::dynamic_extent).
inline constexpr std::size_t dynamic = static_cast<std::size_t>(-1);

// Size arithmetic for readers of untrusted files: false (and out untouched) when the result overflows.
inline constexpr bool checked_mul(std::size_t a, std::size_t b, std::size_t& out) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  out = r;
  return true;
}
inline constexpr bool checked_add(std::size_t a, std::size_t b, std::size_t& out) {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return false;
  out = r;
  return true;
}
// The product of the dimensions [first, last). A zero dimension makes it 0 whatever the others: a
// [2^63, 2^63, 0] tensor is empty, not an overflow.
template <class It>
constexpr bool checked_product(It first, It last, std::size_t& out) {
  std::size_t n = 1;
  bool zero = false, overflow = false;
  for (; first != last; ++first) {
    const std::size_t d = static_cast<std::size_t>(*first);
    if (d == 0) zero = true;
    else if (!checked_mul(n, d, n)) overflow = true;
  }
  if (!zero && overflow) return false;
  out = zero ? 0 : n;
  return true;
}

class shape {
 public:
  static constexpr std::size_t max_rank = 5;

  constexpr shape() = default;
  constexpr shape(std::initializer_list<std::size_t> dims) {
    if (dims.size() > max_rank) throw_error<shape_error>("shape", "rank ", dims.size(), " exceeds ", max_rank);
    for (std::size_t d : dims) d_[rank_++] = d;
  }
  template <class It>
  static shape from_range(It first, It last) {
    shape s;
    for (; first != last; ++first) {
      if (s.rank_ == max_rank) throw_error<shape_error>("shape::from_range", "rank exceeds ", max_rank);
      s.d_[s.rank_++] = static_cast<std::size_t>(*first);
    }
    return s;
  }

  constexpr std::size_t rank() const { return rank_; }
  constexpr std::size_t operator[](std::size_t i) const { return d_[i]; }
  constexpr std::size_t& operator[](std::size_t i) { return d_[i]; }
  constexpr std::size_t size() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= d_[i];
    return n;
  }
  // size(), or false when the product overflows (shapes read from files).
  constexpr bool checked_size(std::size_t& out) const { return checked_product(begin(), end(), out); }
  constexpr const std::size_t* begin() const { return d_.data(); }
  constexpr const std::size_t* end() const { return d_.data() + rank_; }
  // Dimensions [first, rank) as a new shape (drop leading dims).
  constexpr shape tail(std::size_t first) const {
    shape s;
    for (std::size_t i = first; i < rank_; ++i) s.d_[s.rank_++] = d_[i];
    return s;
  }
  // Elements per index of dimension 0 (the "row" size of the leading dimension).
  constexpr std::size_t inner_size() const { return rank_ == 0 ? 1 : tail(1).size(); }

  friend constexpr bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.d_[i] != b.d_[i]) return false;
    return true;
  }
  friend std::ostream& operator<<(std::ostream& os, const shape& s) {
    os << '[';
    for (std::size_t i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s.d_[i];
    return os << ']';
  }
  std::string str() const {
    std::ostringstream os;
    os << *this;
    return os.str();
  }

 private:
  std::array<std::size_t, max_rank> d_{};
  std::size_t rank_ = 0;
};

}  // namespace cpdiff
