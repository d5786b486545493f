// io::read_png_grey against PNG files from an encoder written apart from it (tests/fixtures/make_png_fixtures.py:
// every colour type and bit depth, the five filters, split IDAT chunks, ancillary chunks) and their expected grey
// values; report::image's PNGs read back; and the errors, each naming the file and what is wrong.
#include <catch2/catch.hpp>

#include <cpdiff/io/npy.hpp>
#include <cpdiff/io/png_read.hpp>
#include <cpdiff/report/png.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include "io/io_test_util.hpp"

namespace fs = std::filesystem;
using namespace cpdiff;

namespace {
using raw = std::vector<std::uint8_t>;   // chunk contents, scanlines
using bytes = std::vector<std::byte>;   // a file

void put32(raw& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}
raw ihdr(std::uint32_t w, std::uint32_t h, int depth, int colour, int interlace = 0) {
  raw d;
  put32(d, w);
  put32(d, h);
  d.insert(d.end(), {std::uint8_t(depth), std::uint8_t(colour), 0, 0, std::uint8_t(interlace)});
  return d;
}
raw deflated(const raw& scanlines) {
  uLongf n = compressBound(static_cast<uLong>(scanlines.size()));
  raw z(n);
  REQUIRE(compress(z.data(), &n, scanlines.data(), static_cast<uLong>(scanlines.size())) == Z_OK);
  z.resize(n);
  return z;
}
bytes signature() {
  bytes f;
  const std::uint8_t sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  for (std::uint8_t b : sig) f.push_back(std::byte{b});
  return f;
}
// A chunk, by the library's PNG writer (report::detail::put_chunk: length, type, data, CRC).
void add_chunk(bytes& f, const char (&type)[5], const raw& data) { report::detail::put_chunk(f, type, data.data(), data.size()); }
// A PNG of the given IHDR, optional PLTE and scanlines (filter bytes included).
bytes png(const raw& header, const raw& scanlines, const raw& plte = {}) {
  bytes f = signature();
  add_chunk(f, "IHDR", header);
  if (!plte.empty()) add_chunk(f, "PLTE", plte);
  add_chunk(f, "IDAT", deflated(scanlines));
  add_chunk(f, "IEND", {});
  return f;
}
// The same with one more chunk before IDAT.
bytes png_with(const char (&type)[5], const raw& data, const raw& header, const raw& scanlines) {
  bytes f = signature();
  add_chunk(f, "IHDR", header);
  add_chunk(f, type, data);
  add_chunk(f, "IDAT", deflated(scanlines));
  add_chunk(f, "IEND", {});
  return f;
}
io::grey_image decode(const bytes& f) { return io::decode_png_grey(f, "test.png"); }
}  // namespace

TEST_CASE("read_png_grey reads every colour type and bit depth to the expected grey values", "[io]") {
  const fs::path dir = cpdiff_io_test::fixtures_dir() / "png";
  for (const char* name : {"grey1", "grey2", "grey4", "grey8", "grey16", "grey_alpha8", "grey_alpha16", "rgb8",
                           "rgb16", "rgba8", "rgba16", "palette1", "palette2", "palette4", "palette8", "style28"}) {
    INFO(name);
    const io::grey_image im = io::read_png_grey(dir / (std::string(name) + ".png"));
    const auto want = io::load_npy<float>(dir / (std::string(name) + ".npy"));
    REQUIRE(want.shape == std::vector<std::size_t>{im.height, im.width});
    CHECK(im.pixels == want.data);  // the same double arithmetic, the same float: exact
  }
}

TEST_CASE("read_png_grey reads report::image's PNGs as their luma", "[io]") {
  cpdiff_io_test::temp_dir t;
  report::image img(9, 4, report::colours::white);
  img.set_pixel(2, 1, report::rgb{10, 200, 30});
  img.set_pixel(8, 3, report::colours::black);
  report::write_png(t.path() / "a.png", img);
  const io::grey_image im = io::read_png_grey(t.path() / "a.png");
  REQUIRE(im.width == 9);
  REQUIRE(im.height == 4);
  CHECK(im.pixels[0] == 1.0f);
  CHECK(im.pixels[1 * 9 + 2] == static_cast<float>((0.299 * 10 + 0.587 * 200 + 0.114 * 30) / 255.0));
  CHECK(im.pixels[3 * 9 + 8] == 0.0f);
}

TEST_CASE("read_png_grey names the file and the problem of a bad PNG", "[io]") {
  const raw row2x2{0, 10, 20, 0, 30, 40};  // grey8 2 x 2, filter None
  REQUIRE(decode(png(ihdr(2, 2, 8, 0), row2x2)).pixels == std::vector<float>{10 / 255.0f, 20 / 255.0f, 30 / 255.0f, 40 / 255.0f});
  const auto fails = [](const bytes& f, const std::string& message) {
    CHECK_THROWS_WITH(io::decode_png_grey(f, "test.png"), Catch::Contains("'test.png': ") && Catch::Contains(message));
  };
  fails(bytes(10, std::byte{'G'}), "not a PNG file");
  bytes good = png(ihdr(2, 2, 8, 0), row2x2);
  bytes bad_crc = good;
  bad_crc[8 + 8 + 3] ^= std::byte{1};  // a byte of IHDR's width
  fails(bad_crc, "chunk 'IHDR' at byte 8 has a bad CRC");
  fails(bytes(good.begin(), good.end() - 12), "truncated: no IEND chunk");
  fails(bytes(good.begin(), good.begin() + 50), "chunk 'IDAT' at byte 33 runs past the end of the file");
  fails(png(ihdr(2, 2, 8, 0, 1), row2x2), "interlaced (Adam7), which is not supported: save it without interlacing");
  fails(png(ihdr(0, 2, 8, 0), row2x2), "the image is 0 x 2 pixels");
  fails(png(ihdr(1u << 13, 1u << 12, 8, 0), row2x2), "more than 16777216 in all");
  fails(png(ihdr(2, 2, 3, 0), row2x2), "colour type 0 with bit depth 3 is not a PNG format");
  fails(png(ihdr(2, 2, 16, 3), row2x2), "colour type 3 with bit depth 16");
  fails(png(ihdr(2, 3, 8, 0), row2x2), "the image data inflate to 6 bytes, the header implies 9");
  fails(png(ihdr(2, 1, 8, 0), row2x2), "inflate to more than the 3 bytes");
  fails(png(ihdr(2, 2, 8, 0), {0, 10, 20, 5, 30, 40}), "row 1 has filter type 5 (0-4 exist)");
  fails(png_with("ABCD", {1}, ihdr(2, 2, 8, 0), row2x2), "unknown critical chunk 'ABCD'");
  CHECK(decode(png_with("abCD", {1}, ihdr(2, 2, 8, 0), row2x2)).width == 2);  // an ancillary one is skipped
  fails(png(ihdr(2, 2, 8, 3), row2x2), "a palette image without a PLTE chunk");
  fails(png(ihdr(2, 2, 8, 3), {0, 0, 1, 0, 2, 0}, {1, 2, 3, 4, 5, 6}), "pixel (0, 1) has palette index 2 of 2 entries");
  bytes no_idat = signature();
  add_chunk(no_idat, "IHDR", ihdr(2, 2, 8, 0));
  add_chunk(no_idat, "IEND", {});
  fails(no_idat, "no image data (IDAT)");
  raw z = deflated(row2x2);
  z[2] ^= 0xff;  // inside the zlib stream, its chunk's CRC right
  bytes corrupt = signature();
  add_chunk(corrupt, "IHDR", ihdr(2, 2, 8, 0));
  add_chunk(corrupt, "IDAT", z);
  add_chunk(corrupt, "IEND", {});
  fails(corrupt, "the image data do not inflate");
  CHECK_THROWS_WITH(io::read_png_grey("/nonexistent/a.png"), Catch::Contains("/nonexistent/a.png"));
}
