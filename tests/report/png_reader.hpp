#pragma once
// A small, independent PNG decoder for the report tests: 8-bit RGB, non-interlaced, any of the five
// scanline filters. It checks the signature, every chunk's CRC, the IHDR fields and the chunk order,
// (with its own bitwise CRC-32, not zlib's), and throws std::runtime_error on anything it does not accept, so a test can tell what broke.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <zlib.h>

namespace cpdiff_report_test {

struct decoded_png {
  std::uint32_t width = 0, height = 0;
  std::uint8_t bit_depth = 0, colour_type = 0, compression = 0, filter = 0, interlace = 0;
  std::vector<std::string> chunk_types;  // in file order
  std::vector<std::uint8_t> filter_bytes;  // one per scanline
  std::vector<std::uint8_t> rgb;           // [height, width, 3]
  std::uint8_t r(std::size_t x, std::size_t y) const { return rgb[(y * width + x) * 3 + 0]; }
  std::uint8_t g(std::size_t x, std::size_t y) const { return rgb[(y * width + x) * 3 + 1]; }
  std::uint8_t b(std::size_t x, std::size_t y) const { return rgb[(y * width + x) * 3 + 2]; }
};

inline std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// Bitwise CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), independent of zlib's table-driven one.
inline std::uint32_t crc32_bitwise(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

inline int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

inline decoded_png decode_png(const std::vector<std::uint8_t>& f) {
  static const std::uint8_t sig[8] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
  if (f.size() < 8 || !std::equal(sig, sig + 8, f.begin())) throw std::runtime_error("bad PNG signature");
  decoded_png out;
  std::vector<std::uint8_t> idat;
  std::size_t at = 8;
  bool seen_end = false;
  while (at < f.size()) {
    if (seen_end) throw std::runtime_error("bytes after IEND");
    if (f.size() - at < 12) throw std::runtime_error("truncated chunk header");
    const std::uint32_t len = be32(&f[at]);
    if (f.size() - at - 12 < len) throw std::runtime_error("truncated chunk data");
    const std::string type(reinterpret_cast<const char*>(&f[at + 4]), 4);
    const std::uint8_t* data = &f[at + 8];
    const std::uint32_t stored = be32(&f[at + 8 + len]);
    const std::uint32_t crc = crc32_bitwise(&f[at + 4], 4 + std::size_t{len});
    if (crc != stored) throw std::runtime_error("CRC mismatch in chunk " + type);
    out.chunk_types.push_back(type);
    if (type == "IHDR") {
      if (out.chunk_types.size() != 1 || len != 13) throw std::runtime_error("IHDR must come first, 13 bytes");
      out.width = be32(data);
      out.height = be32(data + 4);
      out.bit_depth = data[8];
      out.colour_type = data[9];
      out.compression = data[10];
      out.filter = data[11];
      out.interlace = data[12];
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      if (len != 0) throw std::runtime_error("IEND with data");
      seen_end = true;
    }
    at += 12 + len;
  }
  if (!seen_end) throw std::runtime_error("no IEND");
  if (out.bit_depth != 8 || out.colour_type != 2 || out.interlace != 0 || out.compression != 0 || out.filter != 0)
    throw std::runtime_error("only 8-bit RGB, non-interlaced PNGs are supported");
  const std::size_t stride = std::size_t{out.width} * 3, raw_size = (stride + 1) * out.height;
  std::vector<std::uint8_t> raw(raw_size + 1);  // one spare byte: a longer stream shows up as a size mismatch
  uLongf got = static_cast<uLongf>(raw.size());
  if (uncompress(raw.data(), &got, idat.data(), static_cast<uLong>(idat.size())) != Z_OK)
    throw std::runtime_error("zlib stream does not inflate to the expected size");
  if (got != raw_size) throw std::runtime_error("inflated " + std::to_string(got) + " bytes, expected " +
                                                std::to_string(raw_size));
  out.rgb.assign(stride * out.height, 0);
  for (std::size_t y = 0; y < out.height; ++y) {
    const std::uint8_t ft = raw[y * (stride + 1)];
    out.filter_bytes.push_back(ft);
    const std::uint8_t* in = &raw[y * (stride + 1) + 1];
    std::uint8_t* row = &out.rgb[y * stride];
    const std::uint8_t* up = y > 0 ? &out.rgb[(y - 1) * stride] : nullptr;
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= 3 ? row[i - 3] : 0, b = up ? up[i] : 0, c = (up && i >= 3) ? up[i - 3] : 0;
      int pred = 0;
      switch (ft) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: pred = paeth(a, b, c); break;
        default: throw std::runtime_error("bad filter byte " + std::to_string(ft));
      }
      row[i] = static_cast<std::uint8_t>(in[i] + pred);
    }
  }
  return out;
}

inline std::vector<std::uint8_t> to_u8(const std::vector<std::byte>& b) {
  std::vector<std::uint8_t> out(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) out[i] = static_cast<std::uint8_t>(b[i]);
  return out;
}

inline std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace cpdiff_report_test
