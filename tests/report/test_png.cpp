#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/report/png.hpp"
#include "io/io_test_util.hpp"
#include "report/png_reader.hpp"

namespace rp = cpdiff::report;
using cpdiff_report_test::decode_png;
using cpdiff_report_test::to_u8;

namespace {

rp::image gradient_image(int w, int h) {
  rp::image img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img.set_pixel(x, y, {static_cast<std::uint8_t>(x * 37 % 256), static_cast<std::uint8_t>(y * 53 % 256),
                           static_cast<std::uint8_t>((x * y + 11) % 256)});
  return img;
}

int count_colour(const rp::image& img, rp::rgb c) {
  int n = 0;
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) n += img.pixel(x, y) == c;
  return n;
}

}  // namespace

TEST_CASE("encode_png writes signature, IHDR, IDAT, IEND with valid CRCs and the exact pixels", "[report][png]") {
  const rp::image img = gradient_image(7, 5);
  const auto file = to_u8(rp::encode_png(img));
  // Signature, and the IHDR chunk at its fixed place: length 13, then width 7 and height 5 big-endian.
  const std::vector<std::uint8_t> head{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                       0,    0,   0,   7,   0,    0,    0,    5,    8, 2, 0, 0,  0};
  REQUIRE(file.size() > head.size());
  CHECK(std::vector<std::uint8_t>(file.begin(), file.begin() + static_cast<long>(head.size())) == head);

  const auto png = decode_png(file);  // throws on any CRC or structure error
  CHECK(png.chunk_types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
  CHECK(png.width == 7);
  CHECK(png.height == 5);
  CHECK(png.bit_depth == 8);
  CHECK(png.colour_type == 2);
  CHECK(png.filter_bytes == std::vector<std::uint8_t>(5, 0));
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      const rp::rgb c = img.pixel(x, y);
      REQUIRE(png.r(x, y) == c.r);
      REQUIRE(png.g(x, y) == c.g);
      REQUIRE(png.b(x, y) == c.b);
    }
  // The last 12 bytes are IEND with its well-known CRC AE 42 60 82.
  const std::vector<std::uint8_t> iend{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  CHECK(std::vector<std::uint8_t>(file.end() - 12, file.end()) == iend);
}

TEST_CASE("the test's PNG reader rejects a corrupted file", "[report][png]") {
  auto file = to_u8(rp::encode_png(gradient_image(4, 3)));
  file[40] ^= 0x01;  // inside IDAT's data
  CHECK_THROWS_WITH(decode_png(file), Catch::Contains("CRC mismatch"));
}

TEST_CASE("write_png writes the file atomically and it decodes to the same pixels", "[report][png]") {
  cpdiff_io_test::temp_dir d;
  const auto path = d / "chart.png";
  rp::image img(300, 200, {10, 20, 30});
  img.fill_rect(50, 40, 100, 60, {250, 0, 0});
  rp::write_png(path, img);
  CHECK(d.entries() == std::vector<std::string>{"chart.png"});  // no temporary left behind
  const auto file = cpdiff_report_test::read_file(path);
  CHECK(file.size() < 3000);  // flat colour compresses: 180,000 raw bytes
  const auto png = decode_png(file);
  REQUIRE(png.width == 300);
  REQUIRE(png.height == 200);
  CHECK(png.r(0, 0) == 10);
  CHECK(png.b(299, 199) == 30);
  CHECK(png.r(50, 40) == 250);
  CHECK(png.g(149, 99) == 0);
  CHECK(png.r(150, 100) == 10);
}

TEST_CASE("image checks its size and clips drawing", "[report][png]") {
  CHECK_THROWS_AS(rp::image(0, 5), cpdiff::config_error);
  CHECK_THROWS_AS(rp::image(5, -1), cpdiff::config_error);
  rp::image img(10, 8);
  CHECK_NOTHROW(img.set_pixel(-1, 3, rp::colours::black));
  CHECK_NOTHROW(img.set_pixel(10, 3, rp::colours::black));
  CHECK_NOTHROW(img.line(-20, -20, 30, 30, rp::colours::black));
  CHECK_NOTHROW(img.circle(-3, -3, 5, rp::colours::black));
  CHECK_THROWS_AS(img.pixel(10, 0), cpdiff::config_error);
  img.fill_rect(-2, -2, 5, 4, {1, 2, 3});  // covers x in [0, 3), y in [0, 2)
  CHECK(count_colour(img, {1, 2, 3}) == 6);
}

TEST_CASE("line draws Bresenham pixels including both ends", "[report][png]") {
  const rp::rgb k = rp::colours::black;
  rp::image h(20, 10);
  h.line(2, 3, 12, 3, k);
  CHECK(count_colour(h, k) == 11);
  rp::image d(20, 20);
  d.line(15, 15, 5, 5, k);  // a 45-degree diagonal, drawn backwards
  CHECK(count_colour(d, k) == 11);
  for (int i = 5; i <= 15; ++i) CHECK(d.pixel(i, i) == k);
  rp::image s(20, 20);
  s.line(0, 0, 10, 4, k);  // shallow: one pixel per column, y rounds along the true line
  CHECK(count_colour(s, k) == 11);
  for (int x = 0; x <= 10; ++x) {
    int hits = 0;
    for (int y = 0; y < 20; ++y)
      if (s.pixel(x, y) == k) {
        ++hits;
        CHECK(std::abs(y - 0.4 * x) <= 0.5 + 1e-9);
      }
    CHECK(hits == 1);
  }
  rp::image t(20, 20);
  t.line(5, 10, 14, 10, k, 3);  // thickness 3: rows 9, 10, 11
  CHECK(count_colour(t, k) == 3 * 12);  // the square brush adds one column at each end
}

TEST_CASE("circle fills a disc with an anti-aliased rim", "[report][png]") {
  rp::image img(40, 40);
  const rp::rgb red{255, 0, 0};
  img.circle(20, 20, 6, red);
  CHECK(img.pixel(20, 20) == red);
  CHECK(img.pixel(25, 20) == red);  // inside
  CHECK(img.pixel(20, 29) == rp::colours::white);  // well outside
  const int full = count_colour(img, red);
  CHECK(full > 0.8 * M_PI * 36);
  CHECK(full < 1.2 * M_PI * 36);
  const rp::rgb rim = img.pixel(26, 20);  // distance 6: half covered, a blend of red and white
  CHECK(rim.r == 255);
  CHECK(rim.g > 0);
  CHECK(rim.g < 255);
}

TEST_CASE("mix interpolates colours", "[report][png]") {
  CHECK(rp::mix({0, 0, 0}, {200, 100, 50}, 0.5) == rp::rgb{100, 50, 25});
  CHECK(rp::mix({0, 0, 0}, {200, 100, 50}, 2.0) == rp::rgb{200, 100, 50});
}
