// libFuzzer harness: the whole input is one PNG file, given to io::decode_png_grey. A cpdiff error (any
// std::exception) is the expected outcome for a bad file; anything else is a finding, and so is an accepted image
// whose pixels are not H x W grey values in [0, 1].
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>

#include "cpdiff/io/png_read.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cpdiff::io::grey_image im;
  try {
    im = cpdiff::io::decode_png_grey(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("decode_png_grey", e);
    return 0;
  }
  cpdiff_fuzz::accepted("decode_png_grey");
  if (im.width == 0 || im.height == 0 || im.pixels.size() != im.width * im.height) __builtin_trap();
  for (float v : im.pixels)
    if (!(v >= 0.0f && v <= 1.0f)) __builtin_trap();
  return 0;
}
