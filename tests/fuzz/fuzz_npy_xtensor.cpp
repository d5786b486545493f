// libFuzzer harness for the xtensor adaptors of io/npy_xtensor.hpp: load_npy_xarray<T>(path) (io::load_npy, then
// to_xtensor) for float, double and int32. It takes a path, so the input is written to a file in a per-process
// scratch folder.
//
// Input: the whole input is one .npy file.
// An accepted array must be what io::load_npy<T> reads from the same file (shape, and data bit for bit in
// row-major order), to_xtensor / from_xtensor must round-trip that npy_array exactly (shape and data bit for bit,
// so NaN payloads too), and from_xtensor of the loaded xarray must write .npy bytes (io::to_npy_bytes) that load
// back to the same array. A cpdiff error (any std::exception) from load_npy_xarray is the expected outcome for a
// bad file; anything else is a finding, and so is an exception from these checks after an accepted file.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/npy_xtensor.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("npy_xtensor");
  return d;
}

// Same shape, and the same bytes (NaN compared bit for bit).
template <class T>
bool same(const cpdiff::io::npy_array<T>& a, const cpdiff::io::npy_array<T>& b) {
  if (a.shape != b.shape || a.data.size() != b.data.size()) return false;
  return a.data.empty() || std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(T)) == 0;
}

template <class T>
void load_as(const std::filesystem::path& file) {
  namespace io = cpdiff::io;
  xt::xarray<T> x;
  try {
    x = io::load_npy_xarray<T>(file);
    cpdiff_fuzz::accepted("load_npy_xarray");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("load_npy_xarray", e);
    return;
  }
  cpdiff_fuzz::checks_of_accepted("load_npy_xarray", [&] {
    const io::npy_array<T> a = io::load_npy<T>(file);
    // The xarray holds the file's array: its shape, and its data in row-major order.
    if (x.dimension() != a.shape.size()) __builtin_trap();
    for (std::size_t i = 0; i < a.shape.size(); ++i)
      if (x.shape()[i] != a.shape[i]) __builtin_trap();
    if (x.size() != a.data.size()) __builtin_trap();
    std::size_t k = 0;
    for (auto it = x.begin(); it != x.end(); ++it, ++k)
      if (k >= a.data.size() || std::memcmp(&*it, &a.data[k], sizeof(T)) != 0) __builtin_trap();
    if (k != a.data.size()) __builtin_trap();
    // to_xtensor / from_xtensor round-trip exactly.
    if (!same(io::from_xtensor(io::to_xtensor(a)), a)) __builtin_trap();
    // The loaded xarray writes back to the same array.
    const io::npy_array<T> back = io::from_xtensor(x);
    if (!same(back, a)) __builtin_trap();
    const std::vector<std::byte> bytes = io::to_npy_bytes<T>(back.shape, std::span<const T>(back.data));
    if (!same(io::load_npy_bytes<T>(bytes, "fuzz (written back)"), a)) __builtin_trap();
    sink = sink + bytes.size();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = scratch() / "array.npy";
  if (!cpdiff_fuzz::write_bytes(file, std::string_view(reinterpret_cast<const char*>(data), size))) return 0;
  load_as<float>(file);
  load_as<double>(file);
  load_as<std::int32_t>(file);
  return 0;
}
