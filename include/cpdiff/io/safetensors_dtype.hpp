#pragma once
// The safetensors element types: names, sizes, and conversion of one little-endian element to and
// from C++ arithmetic values.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "cpdiff/io/half.hpp"

namespace cpdiff::io {

enum class st_dtype : std::uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
};

namespace detail {
struct st_dtype_info {
  st_dtype dtype;
  std::string_view name;
  std::size_t size;
  bool is_float;
};
inline constexpr st_dtype_info st_dtype_table[] = {
    {st_dtype::BOOL, "BOOL", 1, false},       {st_dtype::U8, "U8", 1, false},
    {st_dtype::I8, "I8", 1, false},           {st_dtype::F8_E5M2, "F8_E5M2", 1, true},
    {st_dtype::F8_E4M3, "F8_E4M3", 1, true},  {st_dtype::I16, "I16", 2, false},
    {st_dtype::U16, "U16", 2, false},         {st_dtype::F16, "F16", 2, true},
    {st_dtype::BF16, "BF16", 2, true},        {st_dtype::I32, "I32", 4, false},
    {st_dtype::U32, "U32", 4, false},         {st_dtype::F32, "F32", 4, true},
    {st_dtype::F64, "F64", 8, true},          {st_dtype::I64, "I64", 8, false},
    {st_dtype::U64, "U64", 8, false},
};
inline constexpr const st_dtype_info& st_info(st_dtype d) { return st_dtype_table[static_cast<std::size_t>(d)]; }

template <class V>
V load_as(const std::byte* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
void store_as(V v, std::byte* p) {
  std::memcpy(p, &v, sizeof(V));
}
}  // namespace detail

constexpr std::string_view st_dtype_name(st_dtype d) { return detail::st_info(d).name; }
constexpr std::size_t st_dtype_size(st_dtype d) { return detail::st_info(d).size; }
constexpr bool st_dtype_is_float(st_dtype d) { return detail::st_info(d).is_float; }
// The writer encodes every dtype except the 8-bit float kinds (use add_raw for those).
constexpr bool st_dtype_writable(st_dtype d) { return d != st_dtype::F8_E5M2 && d != st_dtype::F8_E4M3; }

inline bool st_dtype_from_name(std::string_view name, st_dtype& out) {
  for (const auto& i : detail::st_dtype_table) {
    if (i.name == name) {
      out = i.dtype;
      return true;
    }
  }
  return false;
}

// F32 for float and double (as the format's common case), the matching integer kind otherwise.
template <class T>
constexpr st_dtype st_default_dtype() {
  static_assert(std::is_arithmetic_v<T>, "arithmetic types only");
  if constexpr (std::is_same_v<T, bool>) return st_dtype::BOOL;
  else if constexpr (std::is_floating_point_v<T>) return st_dtype::F32;
  else if constexpr (sizeof(T) == 1) return std::is_signed_v<T> ? st_dtype::I8 : st_dtype::U8;
  else if constexpr (sizeof(T) == 2) return std::is_signed_v<T> ? st_dtype::I16 : st_dtype::U16;
  else if constexpr (sizeof(T) == 4) return std::is_signed_v<T> ? st_dtype::I32 : st_dtype::U32;
  else return std::is_signed_v<T> ? st_dtype::I64 : st_dtype::U64;
}

// One element at p (little-endian, dtype d) as T.
template <class T>
T st_decode(st_dtype d, const std::byte* p) {
  using detail::load_as;
  switch (d) {
    case st_dtype::BOOL: return static_cast<T>(load_as<std::uint8_t>(p) != 0 ? 1 : 0);
    case st_dtype::U8: return static_cast<T>(load_as<std::uint8_t>(p));
    case st_dtype::I8: return static_cast<T>(load_as<std::int8_t>(p));
    case st_dtype::F8_E5M2: return static_cast<T>(f8_e5m2_bits_to_float(load_as<std::uint8_t>(p)));
    case st_dtype::F8_E4M3: return static_cast<T>(f8_e4m3_bits_to_float(load_as<std::uint8_t>(p)));
    case st_dtype::I16: return static_cast<T>(load_as<std::int16_t>(p));
    case st_dtype::U16: return static_cast<T>(load_as<std::uint16_t>(p));
    case st_dtype::F16: return static_cast<T>(f16_bits_to_float(load_as<std::uint16_t>(p)));
    case st_dtype::BF16: return static_cast<T>(bf16_bits_to_float(load_as<std::uint16_t>(p)));
    case st_dtype::I32: return static_cast<T>(load_as<std::int32_t>(p));
    case st_dtype::U32: return static_cast<T>(load_as<std::uint32_t>(p));
    case st_dtype::F32: return static_cast<T>(load_as<float>(p));
    case st_dtype::F64: return static_cast<T>(load_as<double>(p));
    case st_dtype::I64: return static_cast<T>(load_as<std::int64_t>(p));
    case st_dtype::U64: return static_cast<T>(load_as<std::uint64_t>(p));
  }
  return T{};
}

// Store v at p as dtype d (not the F8 kinds). Floats round to nearest; integers are cast.
template <class T>
void st_encode(st_dtype d, T v, std::byte* p) {
  using detail::store_as;
  switch (d) {
    case st_dtype::BOOL: store_as<std::uint8_t>(v != T{} ? 1 : 0, p); return;
    case st_dtype::U8: store_as(static_cast<std::uint8_t>(v), p); return;
    case st_dtype::I8: store_as(static_cast<std::int8_t>(v), p); return;
    case st_dtype::I16: store_as(static_cast<std::int16_t>(v), p); return;
    case st_dtype::U16: store_as(static_cast<std::uint16_t>(v), p); return;
    case st_dtype::F16: store_as(float_to_f16_bits(static_cast<float>(v)), p); return;
    case st_dtype::BF16: store_as(float_to_bf16_bits(static_cast<float>(v)), p); return;
    case st_dtype::I32: store_as(static_cast<std::int32_t>(v), p); return;
    case st_dtype::U32: store_as(static_cast<std::uint32_t>(v), p); return;
    case st_dtype::F32: store_as(static_cast<float>(v), p); return;
    case st_dtype::F64: store_as(static_cast<double>(v), p); return;
    case st_dtype::I64: store_as(static_cast<std::int64_t>(v), p); return;
    case st_dtype::U64: store_as(static_cast<std::uint64_t>(v), p); return;
    case st_dtype::F8_E5M2:
    case st_dtype::F8_E4M3: return;  // rejected by st_dtype_writable before we get here
  }
}

}  // namespace cpdiff::io
