#pragma once
// Float e^x, e^x - 1 and erfc written as straight-line code, so that a loop over them vectorises (glibc's
// expf / expm1f / erff are scalar calls, and a call in a loop stops GCC's vectoriser: ELU's expm1f was 18% of
// the style autoencoder's training step). Device code calls CUDA's own functions instead.
//   exp(x), expm1(x):  x = k ln2 + r, |r| <= ln2 / 2;  e^r - 1 by its Taylor series to r^7 (truncation below
//                      2.5e-8 relative); e^x - 1 = 2^k (e^r - 1) + (2^k - 1). Within 2 ulp of glibc on
//                      [-87, 88] (tests/nn/test_float_math.cpp); x is clamped to that range (exp is 0 below
//                      it), NaN stays NaN.
//   erfc(x):           Chebyshev fit t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z = |x| (Numerical Recipes'
//                      erfcc, 1.2e-7 in exact arithmetic); erfc(-z) = 2 - erfc(z). In float, measured on [-6, 6]:
//                      relative error 2.1e-6 (the rounding of -z^2 + P for large z), absolute 3.0e-7. With FMA
//                      (__FMA__) -z^2 + P is one std::fma, so the result does not depend on whether the compiler
//                      contracts it (GCC does at -O2, not at -O1, where the error was 3.8e-6).
// The selects (clamp, sign) vectorise only where the compiler may if-convert floating-point comparisons: GCC
// needs -fno-trapping-math for that, which the cpdiff::cpdiff CMake target adds (CPDIFF_NO_TRAPPING_MATH).
#include <bit>
#include <cmath>
#include <cstdint>

#include "cpdiff/core/host_device.hpp"

namespace cpdiff::fmath {

namespace detail {

// x = k ln2 + r with integer k in [-126, 127] and |r| <= ln2 / 2 (Cody-Waite: ln2 in two parts, the first
// with few enough bits that k * ln2_hi is exact). Returns r and sets two_k = 2^k.
inline float reduce_ln2(float x, float& two_k) {
  constexpr float inv_ln2 = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
  constexpr float round_magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer held in the low bits
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  const float shifted = x * inv_ln2 + round_magic;
  const float k = shifted - round_magic;
  const std::uint32_t biased = std::bit_cast<std::uint32_t>(shifted) - 0x4B400000u + 127u;  // k + 127
  two_k = std::bit_cast<float>(biased << 23);
  return (x - k * ln2_hi) - k * ln2_lo;
}

// e^x = 2^k (1 + p) with p = e^r - 1 for |r| <= ln2 / 2: r + r^2 (1/2 + r/6 + ... + r^5/5040), Horner
struct exp_parts {
  float two_k, p;
};
inline exp_parts split_exp(float x) {
  exp_parts e;
  const float r = reduce_ln2(x, e.two_k);
  const float q = 1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 + r * (1.f / 5040)))));
  e.p = r + r * r * q;
  return e;
}

}  // namespace detail

CPDIFF_HD inline float expm1(float x) {
#if defined(__CUDA_ARCH__)
  return ::expm1f(x);
#else
  const detail::exp_parts e = detail::split_exp(x);
  // 2^k (e^r - 1) + (2^k - 1); 2^k - 1 is exact for k >= -24 and rounds to -1 below, where e^x - 1 does too
  return e.two_k * e.p + (e.two_k - 1.f);
#endif
}

CPDIFF_HD inline float exp(float x) {
#if defined(__CUDA_ARCH__)
  return ::expf(x);
#else
  const detail::exp_parts e = detail::split_exp(x);
  return x < -87.f ? 0.f : e.two_k * e.p + e.two_k;  // below -87 the clamp would give 2^-126: flush to 0
#endif
}

CPDIFF_HD inline float erfc(float x) {
#if defined(__CUDA_ARCH__)
  return ::erfcf(x);
#else
  const float z = x < 0.f ? -x : x;
  const float t = 1.f / (1.f + 0.5f * z);
  const float p =
      -1.26551223f +
      t * (1.00002368f +
           t * (0.37409196f +
                t * (0.09678418f +
                     t * (-0.18628806f +
                          t * (0.27886807f +
                               t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
#if defined(__FMA__)
  const float r = t * fmath::exp(std::fma(-z, z, p));  // -z^2 + p rounded once, whatever the optimisation level
#else
  const float r = t * fmath::exp(-z * z + p);
#endif
  return x < 0.f ? 2.f - r : r;
#endif
}

// The same names for double: the library's double instantiations (gradient checks) keep the C library's.
CPDIFF_HD inline double expm1(double x) { return std::expm1(x); }
CPDIFF_HD inline double exp(double x) { return std::exp(x); }
CPDIFF_HD inline double erfc(double x) { return std::erfc(x); }

}  // namespace cpdiff::fmath
