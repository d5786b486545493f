#pragma once
// An 8-bit RGB raster image with a few drawing primitives, and a PNG writer for it (zlib).
//
// Coordinates are pixels, x to the right and y downward, (0, 0) the top-left pixel. Drawing clips to
// the image, so callers may draw partly outside it. The PNG holds one IHDR (colour type 2, RGB, 8 bits,
// no interlace), one IDAT (the zlib stream of the filtered scanlines) and IEND; every scanline uses
// filter 0 (None), which keeps the writer simple and still compresses charts (mostly flat colour) well.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"

namespace cpdiff::report {

struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const rgb&, const rgb&) = default;
};

namespace colours {
inline constexpr rgb white{255, 255, 255};
inline constexpr rgb black{0, 0, 0};
inline constexpr rgb grey{128, 128, 128};
inline constexpr rgb light_grey{225, 225, 225};
}  // namespace colours

// Linear mix of two colours: t = 0 gives a, t = 1 gives b (t is clamped to [0, 1]).
inline rgb mix(rgb a, rgb b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto m = [t](std::uint8_t u, std::uint8_t v) {
    return static_cast<std::uint8_t>(std::lround(u + (static_cast<double>(v) - u) * t));
  };
  return {m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}

class image {
 public:
  image() = default;
  // A width x height image filled with `background`. Sizes must be positive and at most 2^15.
  image(int width, int height, rgb background = colours::white) : width_(width), height_(height) {
    CPDIFF_CHECK(width > 0 && height > 0 && width <= 32768 && height <= 32768, config_error, "report::image",
                 "image size must be in [1, 32768] x [1, 32768], got ", width, " x ", height);
    pixels_.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
    fill_rect(0, 0, width, height, background);
  }

  int width() const { return width_; }
  int height() const { return height_; }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }
  // Row-major RGB bytes: [height, width, 3].
  const std::vector<std::uint8_t>& bytes() const { return pixels_; }

  rgb pixel(int x, int y) const {
    CPDIFF_CHECK(contains(x, y), config_error, "report::image::pixel", "(", x, ", ", y, ") is outside the ",
                 width_, " x ", height_, " image");
    const std::uint8_t* p = &pixels_[offset(x, y)];
    return {p[0], p[1], p[2]};
  }

  void set_pixel(int x, int y, rgb c) {
    if (!contains(x, y)) return;
    std::uint8_t* p = &pixels_[offset(x, y)];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  // Paint c over the pixel with coverage alpha in [0, 1] (used for anti-aliased lines).
  void blend_pixel(int x, int y, rgb c, double alpha) {
    if (!contains(x, y)) return;
    set_pixel(x, y, mix(pixel(x, y), c, alpha));
  }

  // Filled rectangle with top-left (x, y) and size w x h; empty when w or h <= 0.
  void fill_rect(int x, int y, int w, int h, rgb c) {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min(x + std::max(w, 0), width_), y1 = std::min(y + std::max(h, 0), height_);
    for (int yy = y0; yy < y1; ++yy)
      for (int xx = x0; xx < x1; ++xx) set_pixel(xx, yy, c);
  }
  // One-pixel rectangle outline with the same geometry as fill_rect.
  void rect(int x, int y, int w, int h, rgb c) {
    if (w <= 0 || h <= 0) return;
    fill_rect(x, y, w, 1, c);
    fill_rect(x, y + h - 1, w, 1, c);
    fill_rect(x, y, 1, h, c);
    fill_rect(x + w - 1, y, 1, h, c);
  }

  // Bresenham line from (x0, y0) to (x1, y1), both ends included; thickness > 1 stamps a square
  // brush of that side at each step (enough for chart lines of 2-3 pixels).
  void line(int x0, int y0, int x1, int y1, rgb c, int thickness = 1) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    const int lo = -(thickness - 1) / 2, side = std::max(thickness, 1);
    int err = dx + dy;
    for (;;) {
      if (side == 1)
        set_pixel(x0, y0, c);
      else
        fill_rect(x0 + lo, y0 + lo, side, side, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  // Dashed horizontal line (grid lines): `on` pixels drawn, `off` skipped.
  void dashed_hline(int x0, int x1, int y, rgb c, int on = 4, int off = 3) {
    if (x1 < x0) std::swap(x0, x1);
    for (int x = x0; x <= x1; ++x)
      if ((x - x0) % (on + off) < on) set_pixel(x, y, c);
  }

  // Filled disc of radius r (in pixels, may be fractional) around (cx, cy) with an anti-aliased rim:
  // a pixel's coverage is estimated from the distance of its centre to the circle.
  void circle(double cx, double cy, double r, rgb c) {
    if (!(r > 0)) return;
    const int x0 = static_cast<int>(std::floor(cx - r - 1)), x1 = static_cast<int>(std::ceil(cx + r + 1));
    const int y0 = static_cast<int>(std::floor(cy - r - 1)), y1 = static_cast<int>(std::ceil(cy + r + 1));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double d = std::hypot(x - cx, y - cy);
        const double cover = std::clamp(r + 0.5 - d, 0.0, 1.0);
        if (cover >= 1.0)
          set_pixel(x, y, c);
        else if (cover > 0.0)
          blend_pixel(x, y, c, cover);
      }
  }

 private:
  std::size_t offset(int x, int y) const {
    return (static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)) * 3;
  }

  int width_ = 0, height_ = 0;
  std::vector<std::uint8_t> pixels_;  // [height, width, 3]
};

namespace detail {
inline void put_u32_be(std::vector<std::byte>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((v >> s) & 0xFFu));
}
// A chunk: length (4, big-endian), type (4), data, CRC-32 of type + data (4).
inline void put_chunk(std::vector<std::byte>& out, const char (&type)[5], const std::uint8_t* data, std::size_t n) {
  CPDIFF_CHECK(n <= 0x7FFFFFFFu, io_error, "report::encode_png", "chunk of ", n, " bytes exceeds PNG's 2^31-1 limit");
  put_u32_be(out, static_cast<std::uint32_t>(n));
  const std::size_t type_at = out.size();
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(type[i]));
  out.insert(out.end(), reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + n);
  const uLong crc = ::crc32(0L, reinterpret_cast<const Bytef*>(out.data() + type_at), static_cast<uInt>(4 + n));
  put_u32_be(out, static_cast<std::uint32_t>(crc));
}
}  // namespace detail

// The PNG file bytes of `img`. level: zlib compression level 0..9 (Z_DEFAULT_COMPRESSION = -1 allowed).
inline std::vector<std::byte> encode_png(const image& img, int level = 6) {
  CPDIFF_CHECK(img.width() > 0 && img.height() > 0, config_error, "report::encode_png", "empty image");
  CPDIFF_CHECK(level >= -1 && level <= 9, config_error, "report::encode_png", "zlib level must be in [-1, 9], got ",
               level);
  const std::size_t w = static_cast<std::size_t>(img.width()), h = static_cast<std::size_t>(img.height());
  const std::size_t row = 1 + 3 * w;  // filter byte + RGB
  std::vector<std::uint8_t> raw(row * h);
  for (std::size_t y = 0; y < h; ++y) {
    raw[y * row] = 0;  // filter type 0: None
    std::copy_n(img.bytes().data() + y * 3 * w, 3 * w, raw.data() + y * row + 1);
  }
  uLongf packed_size = ::compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> packed(packed_size);
  const int rc = ::compress2(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size()), level);
  CPDIFF_CHECK(rc == Z_OK, io_error, "report::encode_png", "zlib compress2 failed with code ", rc);

  std::vector<std::byte> out;
  out.reserve(packed_size + 64);
  static constexpr std::array<std::uint8_t, 8> signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  for (std::uint8_t b : signature) out.push_back(static_cast<std::byte>(b));

  std::array<std::uint8_t, 13> ihdr{};
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = static_cast<std::uint8_t>((w >> (24 - 8 * i)) & 0xFFu);
    ihdr[4 + i] = static_cast<std::uint8_t>((h >> (24 - 8 * i)) & 0xFFu);
  }
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 2;   // colour type: truecolour (RGB)
  ihdr[10] = 0;  // compression: deflate
  ihdr[11] = 0;  // filter method: adaptive (per-row filter byte)
  ihdr[12] = 0;  // no interlace
  detail::put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  detail::put_chunk(out, "IDAT", packed.data(), packed_size);
  detail::put_chunk(out, "IEND", nullptr, 0);
  return out;
}

// Write `img` as a PNG file, atomically (a reader never sees a half-written file).
inline void write_png(const std::filesystem::path& path, const image& img) {
  const std::vector<std::byte> bytes = encode_png(img);
  io::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace cpdiff::report
