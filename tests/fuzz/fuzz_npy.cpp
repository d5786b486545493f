// libFuzzer harness: the whole input is one .npy file, given to io::read_npy_header and io::load_npy_bytes
// for float, double, int32, int64, uint8 and bool (the integer loads refuse NaN, infinite and out-of-range
// values instead of converting them). A cpdiff error (any std::exception) is the expected outcome for a bad
// file; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <vector>

#include "cpdiff/io/npy.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

template <class T>
void load_as(std::span<const std::byte> bytes, const cpdiff::io::npy_header& h) {
  try {
    const cpdiff::io::npy_array<T> a = cpdiff::io::load_npy_bytes<T>(bytes, "fuzz");
    if (a.shape != h.shape || a.size() != h.numel()) __builtin_trap();
    std::uint64_t acc = a.size();
    for (const T& v : a.data) {
      std::uint64_t b = 0;
      std::memcpy(&b, &v, sizeof(T) < sizeof b ? sizeof(T) : sizeof b);
      acc = acc * 31 + b;
    }
    sink = sink + acc;
    cpdiff_fuzz::accepted("load_npy_bytes");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("load_npy_bytes", e);
    // Integer loads refuse values they cannot hold: expected.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  cpdiff::io::npy_header h;
  try {
    h = cpdiff::io::read_npy_header(bytes, "fuzz");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("read_npy_header", e);
    // A header that does not parse: the loads must refuse the file as well.
    try {
      (void)cpdiff::io::load_npy_bytes<float>(bytes, "fuzz");
    } catch (const std::exception&) {
      return 0;
    }
    __builtin_trap();
  }
  if (h.data_offset > size) __builtin_trap();
  load_as<float>(bytes, h);
  load_as<double>(bytes, h);
  load_as<std::int32_t>(bytes, h);
  load_as<std::int64_t>(bytes, h);
  load_as<std::uint8_t>(bytes, h);
  load_as<bool>(bytes, h);
  return 0;
}
