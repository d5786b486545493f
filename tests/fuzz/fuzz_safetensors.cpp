// libFuzzer harness: the whole input is one safetensors file, given to io::safetensors_file::from_bytes.
// A file that parses has every tensor read through the API: raw bytes, conversion to float and double
// (the F16 / BF16 / F8 decoders of io/half.hpp and io/safetensors_dtype.hpp), to int64 for integer dtypes,
// and the lookup error for a missing name. A cpdiff error (any std::exception) is the expected outcome for
// a bad file; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cpdiff/io/safetensors.hpp"
#include "fuzz_util.hpp"

namespace {

// Keeps the compiler from dropping the conversions.
volatile std::uint64_t sink;

template <class V>
void consume(const std::vector<V>& v) {
  std::uint64_t h = v.size();
  for (const V& x : v) {
    std::uint64_t b = 0;
    std::memcpy(&b, &x, sizeof(V) < sizeof b ? sizeof(V) : sizeof b);
    h = h * 1099511628211ull ^ b;
  }
  sink = sink + h;
}

void exercise(const cpdiff::io::safetensors_file& f) {
  namespace io = cpdiff::io;
  for (const auto& [k, v] : f.metadata()) sink = sink + k.size() + v.size();
  const std::vector<std::string> names = f.names();
  for (const io::tensor_entry& e : f.tensors()) {
    const auto raw = f.raw(e.name);
    if (raw.size() != e.nbytes() || e.numel() * io::st_dtype_size(e.dtype) != raw.size()) __builtin_trap();
    if (!raw.empty()) sink = sink + static_cast<std::uint8_t>(raw[0]) + static_cast<std::uint8_t>(raw[raw.size() - 1]);
    const std::vector<float> a = f.to_f32(e.name);
    const std::vector<double> b = f.to_f64(e.name);
    if (a.size() != e.numel() || b.size() != e.numel()) __builtin_trap();
    consume(a);
    consume(b);
    if (!io::st_dtype_is_float(e.dtype)) consume(f.to_i64(e.name));
    else {
      try {
        (void)f.to_i64(e.name);  // must refuse a float tensor
        __builtin_trap();
      } catch (const cpdiff::io_error&) {
      }
    }
    if (!f.contains(e.name)) __builtin_trap();
  }
  try {
    (void)f.at(names.empty() ? std::string("x") : names.back() + "~");  // not a tensor name
    __builtin_trap();
  } catch (const cpdiff::io_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
    const cpdiff::io::safetensors_file f = cpdiff::io::safetensors_file::from_bytes(std::move(bytes), "fuzz");
    exercise(f);
    cpdiff_fuzz::accepted("safetensors_file::from_bytes");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("safetensors_file::from_bytes", e);
  }
  return 0;
}
