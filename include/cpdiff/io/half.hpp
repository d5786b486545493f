#pragma once
// Bit-level conversions between float and the 16- and 8-bit floating formats found in files:
// IEEE binary16 (F16), bfloat16 (BF16), and the OCP 8-bit formats F8_E5M2 and F8_E4M3 (the "fn"
// variant: no infinities, one NaN pattern per sign). float -> 16-bit rounds to nearest, ties to even;
// NaN stays NaN and values beyond the largest finite 16-bit value become infinity.
#include <bit>
#include <cstdint>
#include <limits>

namespace cpdiff::io {

inline float f16_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);  // infinity or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal: mant * 2^-24, exactly representable as a normal float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    bits = sign | std::bit_cast<std::uint32_t>(v);
  }
  return std::bit_cast<float>(bits);
}

inline std::uint16_t float_to_f16_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) {  // NaN: keep the top payload bits, force quiet
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
  }
  // 0x477FF000 is halfway between 65504 (largest half) and 65536; ties go to even = infinity.
  if (ax >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (ax >= 0x38800000u) {  // normal half (>= 2^-14)
    std::uint32_t h = (ax - 0x38000000u) >> 13;
    const std::uint32_t rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  const std::uint32_t e = ax >> 23;
  if (e < 102) return sign;  // below 2^-25: rounds to zero
  // Subnormal half: value / 2^-24 = mant24 * 2^(e - 126), a right shift by 126 - e (14..24).
  const std::uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126u - e;
  std::uint32_t h = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

inline float bf16_bits_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

inline std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  const std::uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>((x + rounding) >> 16);
}

// F8_E5M2 is the top byte of a binary16.
inline float f8_e5m2_bits_to_float(std::uint8_t b) {
  return f16_bits_to_float(static_cast<std::uint16_t>(static_cast<std::uint16_t>(b) << 8));
}

// F8_E4M3 (fn): bias 7, no infinities, S.1111.111 is NaN, largest finite 448.
inline float f8_e4m3_bits_to_float(std::uint8_t b) {
  const bool neg = (b & 0x80u) != 0;
  const unsigned exp = (b >> 3) & 0xFu;
  const unsigned mant = b & 0x7u;
  float v;
  if (exp == 0xFu && mant == 0x7u) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    v = static_cast<float>(mant) * 0x1p-9f;  // subnormal: mant/8 * 2^-6
  } else {
    const float m = 1.0f + static_cast<float>(mant) * 0.125f;
    v = m * std::bit_cast<float>(static_cast<std::uint32_t>(exp - 7 + 127) << 23);
  }
  return neg ? -v : v;
}

}  // namespace cpdiff::io
