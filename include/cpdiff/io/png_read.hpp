#pragma once
// Reading PNG images as grey values in [0, 1]: the style images of an "images" condition (pipeline/manifest.hpp).
//
//   io::grey_image im = io::read_png_grey("styles/rotate90/0.png");   // im.pixels [H, W], row-major
//
// Every PNG colour type and bit depth of the standard, non-interlaced: grey (1, 2, 4, 8, 16 bits), grey + alpha,
// RGB, RGBA (8, 16) and palette (1, 2, 4, 8). A sample s of b bits reads as s / (2^b - 1); a colour as its luma
//   grey = (0.299 R + 0.587 G + 0.114 B) / (2^b - 1)        (ITU-R BT.601, PIL's convert("L") weights)
// computed in double, stored as float (a palette entry is 8-bit RGB). Alpha (and tRNS) is ignored: the colour is
// read as stored, not composited. The five scanline filters (None, Sub, Up, Average, Paeth) are undone as the
// standard defines them. Ancillary chunks are skipped; every chunk's CRC is checked.
// Errors (io_error) name the file and what is wrong: not a PNG, a bad CRC, a chunk running past the end, an
// unknown critical chunk, an IHDR field out of range, an interlaced image (save it without interlacing), a
// palette image without PLTE or with an index past it, image data that inflates to more or fewer bytes than the
// header implies, an unknown filter type. Images over 2^24 pixels are refused before anything is allocated.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <zlib.h>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"

namespace cpdiff::io {

struct grey_image {
  std::size_t height = 0, width = 0;
  std::vector<float> pixels;  // [H, W], row-major, in [0, 1]
};

inline constexpr std::size_t png_max_pixels = std::size_t(1) << 24;

namespace png_detail {

template <class... Args>
[[noreturn]] void fail(const std::string& source, Args&&... args) {
  throw_error<io_error>("io::read_png_grey", "'", source, "': ", std::forward<Args>(args)...);
}

inline std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

struct header {
  std::uint32_t width = 0, height = 0;
  int depth = 0, colour = 0;
  int channels() const { return colour == 0 ? 1 : colour == 2 ? 3 : colour == 3 ? 1 : colour == 4 ? 2 : 4; }
  std::size_t row_bytes() const { return (std::size_t(width) * std::size_t(channels() * depth) + 7) / 8; }
  std::size_t pixel_bytes() const { return std::max<std::size_t>(1, std::size_t(channels() * depth) / 8); }
};

inline header read_ihdr(std::span<const std::uint8_t> d, const std::string& source) {
  if (d.size() != 13) fail(source, "IHDR holds ", d.size(), " bytes, expected 13");
  header h{be32(d.data()), be32(d.data() + 4), d[8], d[9]};
  const int compression = d[10], filter = d[11], interlace = d[12];
  if (h.width == 0 || h.height == 0) fail(source, "the image is ", h.width, " x ", h.height, " pixels");
  if (std::size_t(h.width) * h.height > png_max_pixels)
    fail(source, "the image is ", h.width, " x ", h.height, " pixels, more than ", png_max_pixels, " in all");
  const bool depth_ok = h.colour == 0   ? (h.depth == 1 || h.depth == 2 || h.depth == 4 || h.depth == 8 || h.depth == 16)
                        : h.colour == 3 ? (h.depth == 1 || h.depth == 2 || h.depth == 4 || h.depth == 8)
                        : (h.colour == 2 || h.colour == 4 || h.colour == 6) ? (h.depth == 8 || h.depth == 16)
                                                                            : false;
  if (!depth_ok) fail(source, "colour type ", h.colour, " with bit depth ", h.depth, " is not a PNG format");
  if (compression != 0 || filter != 0) fail(source, "unknown compression (", compression, ") or filter method (", filter, ")");
  if (interlace == 1) fail(source, "the image is interlaced (Adam7), which is not supported: save it without interlacing");
  if (interlace != 0) fail(source, "unknown interlace method ", interlace);
  return h;
}

// The zlib stream of the IDAT chunks, inflated into exactly `expected` bytes.
inline std::vector<std::uint8_t> inflate_exact(const std::vector<std::uint8_t>& z, std::size_t expected,
                                               const std::string& source) {
  std::vector<std::uint8_t> out(expected + 1);  // one spare byte: more data than expected shows as a full buffer
  z_stream s{};
  if (inflateInit(&s) != Z_OK) fail(source, "zlib could not start");
  s.next_in = const_cast<Bytef*>(z.data());
  s.avail_in = static_cast<uInt>(z.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&s, Z_FINISH);
  const std::size_t got = out.size() - s.avail_out;
  inflateEnd(&s);
  if (rc != Z_STREAM_END) {
    if (got > expected) fail(source, "the image data inflate to more than the ", expected, " bytes its header implies");
    fail(source, "the image data do not inflate (zlib: ", s.msg ? s.msg : rc == Z_BUF_ERROR ? "truncated" : "error",
         "; ", got, " of ", expected, " bytes)");
  }
  if (got != expected) fail(source, "the image data inflate to ", got, " bytes, the header implies ", expected);
  out.resize(expected);
  return out;
}

inline int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

// Undoes the scanline filters in place: raw [H, 1 + row bytes] -> rows [H, row bytes].
inline std::vector<std::uint8_t> unfilter(const std::vector<std::uint8_t>& raw, const header& h, const std::string& source) {
  const std::size_t rb = h.row_bytes(), bpp = h.pixel_bytes();
  std::vector<std::uint8_t> rows(rb * h.height);
  for (std::size_t y = 0; y < h.height; ++y) {
    const std::uint8_t type = raw[y * (rb + 1)];
    const std::uint8_t* in = raw.data() + y * (rb + 1) + 1;
    std::uint8_t* cur = rows.data() + y * rb;
    const std::uint8_t* up = y > 0 ? cur - rb : nullptr;
    if (type > 4) fail(source, "row ", y, " has filter type ", int(type), " (0-4 exist)");
    for (std::size_t i = 0; i < rb; ++i) {
      const int a = i >= bpp ? cur[i - bpp] : 0, b = up ? up[i] : 0, c = (up && i >= bpp) ? up[i - bpp] : 0;
      const int pred = type == 0 ? 0 : type == 1 ? a : type == 2 ? b : type == 3 ? (a + b) / 2 : paeth(a, b, c);
      cur[i] = static_cast<std::uint8_t>(in[i] + pred);
    }
  }
  return rows;
}

// Sample k (0-based, of depth bits) of a row.
inline unsigned sample(const std::uint8_t* row, std::size_t k, int depth) {
  if (depth == 8) return row[k];
  if (depth == 16) return (unsigned(row[2 * k]) << 8) | row[2 * k + 1];
  const std::size_t bit = k * std::size_t(depth);
  return (row[bit / 8] >> (8 - depth - bit % 8)) & ((1u << depth) - 1);
}

inline double luma(double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; }

}  // namespace png_detail

// A PNG file's bytes -> grey image; `source` names it in errors.
inline grey_image decode_png_grey(std::span<const std::byte> bytes, const std::string& source) {
  using namespace png_detail;
  const std::span<const std::uint8_t> f(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  static constexpr std::array<std::uint8_t, 8> signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (f.size() < 8 || !std::equal(signature.begin(), signature.end(), f.begin()))
    fail(source, "not a PNG file (its first bytes are not the PNG signature)");
  header h;
  bool have_header = false, ended = false;
  std::vector<std::array<std::uint8_t, 3>> palette;
  std::vector<std::uint8_t> z;
  for (std::size_t at = 8; !ended;) {
    if (f.size() - at < 12) fail(source, "truncated: no IEND chunk (", f.size() - at, " bytes after the last chunk)");
    const std::uint32_t len = be32(f.data() + at);
    const std::string type(reinterpret_cast<const char*>(f.data() + at + 4), 4);
    if (len > f.size() - at - 12) fail(source, "chunk '", type, "' at byte ", at, " runs past the end of the file");
    const std::span<const std::uint8_t> data = f.subspan(at + 8, len);
    const std::uint32_t crc = static_cast<std::uint32_t>(crc32(0L, f.data() + at + 4, len + 4));
    if (crc != be32(f.data() + at + 8 + len)) fail(source, "chunk '", type, "' at byte ", at, " has a bad CRC");
    if (!have_header && type != "IHDR") fail(source, "the first chunk is '", type, "', expected IHDR");
    if (type == "IHDR") {
      if (have_header) fail(source, "two IHDR chunks");
      h = read_ihdr(data, source);
      have_header = true;
    } else if (type == "PLTE") {
      if (len % 3 != 0 || len == 0 || len > 768) fail(source, "PLTE holds ", len, " bytes (1-256 RGB entries)");
      for (std::size_t i = 0; i < len; i += 3) palette.push_back({data[i], data[i + 1], data[i + 2]});
    } else if (type == "IDAT") {
      z.insert(z.end(), data.begin(), data.end());
    } else if (type == "IEND") {
      ended = true;
    } else if (!(type[0] & 0x20)) {  // a critical chunk (upper-case first letter) we do not know
      fail(source, "unknown critical chunk '", type, "'");
    }
    at += 12 + std::size_t(len);
  }
  if (z.empty()) fail(source, "no image data (IDAT)");
  if (h.colour == 3 && palette.empty()) fail(source, "a palette image without a PLTE chunk");
  const std::vector<std::uint8_t> rows = unfilter(inflate_exact(z, (h.row_bytes() + 1) * h.height, source), h, source);

  grey_image im{h.height, h.width, std::vector<float>(std::size_t(h.width) * h.height)};
  const int ch = h.channels();
  const double top = double((1u << h.depth) - 1);
  for (std::size_t y = 0; y < h.height; ++y) {
    const std::uint8_t* row = rows.data() + y * h.row_bytes();
    for (std::size_t x = 0; x < h.width; ++x) {
      const std::size_t k = x * std::size_t(ch);
      double v;
      if (h.colour == 0 || h.colour == 4) {
        v = sample(row, k, h.depth) / top;
      } else if (h.colour == 3) {
        const unsigned i = sample(row, k, h.depth);
        if (i >= palette.size()) fail(source, "pixel (", x, ", ", y, ") has palette index ", i, " of ", palette.size(), " entries");
        v = luma(palette[i][0], palette[i][1], palette[i][2]) / 255.0;
      } else {
        v = luma(sample(row, k, h.depth), sample(row, k + 1, h.depth), sample(row, k + 2, h.depth)) / top;
      }
      im.pixels[y * h.width + x] = static_cast<float>(v);
    }
  }
  return im;
}

inline grey_image read_png_grey(const std::filesystem::path& file) {
  const std::vector<std::byte> bytes = read_file_bytes(file);
  return decode_png_grey(bytes, file.string());
}

}  // namespace cpdiff::io
