#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/report/font.hpp"

namespace rp = cpdiff::report;

namespace {

// The image as text: '#' for pixels of colour c, '.' for the rest.
std::vector<std::string> as_text(const rp::image& img, rp::rgb c) {
  std::vector<std::string> rows;
  for (int y = 0; y < img.height(); ++y) {
    std::string r;
    for (int x = 0; x < img.width(); ++x) r += img.pixel(x, y) == c ? '#' : '.';
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

TEST_CASE("every printable ASCII glyph is 5 bits wide, distinct, and only space is blank", "[report][font]") {
  std::set<rp::font::glyph> seen;
  for (int c = 32; c <= 126; ++c) {
    const auto& g = rp::font::glyph_for(static_cast<unsigned char>(c));
    int bits = 0;
    for (auto row : g) {
      CHECK(row < 32);
      bits += __builtin_popcount(row);
    }
    if (c == ' ')
      CHECK(bits == 0);
    else
      CHECK(bits > 0);
    seen.insert(g);
  }
  CHECK(seen.size() == 95);
  // Only descenders and '_' use the last row.
  const std::string desc = ",_gjpqy";
  for (int c = 32; c <= 126; ++c)
    CHECK((rp::font::glyph_for(static_cast<unsigned char>(c))[7] != 0) == (desc.find(static_cast<char>(c)) != std::string::npos));
  CHECK(rp::font::glyph_for(200) == rp::font::glyph_for('?'));
  CHECK(rp::font::glyph_for(10) == rp::font::glyph_for('?'));
}

TEST_CASE("draw_text renders the glyph bits at the given place and scale", "[report][font]") {
  const rp::rgb k = rp::colours::black;
  rp::image img(12, 9);
  rp::draw_text(img, 1, 0, "A4", k);
  const std::vector<std::string> expected{
      ".###.....#..",  //
      "#...#...##..",  //
      "#...#..#.#..",  //
      "#####.#..#..",  //
      "#...#.#####.",  //
      "#...#....#..",  //
      "#...#....#..",  //
      "............",  //
      "............",
  };
  // Drawn at x = 1: shift the expectation by one column.
  std::vector<std::string> shifted;
  for (const auto& r : expected) shifted.push_back(std::string(1, '.').append(r, 0, 11));
  CHECK(as_text(img, k) == shifted);

  rp::image big(12, 16);
  rp::draw_text(big, 0, 0, "1", k, 2);
  const auto t = as_text(big, k);
  CHECK(t[0] == "....##......");  // row 0 of '1' is 00100: column 2 -> pixels 4, 5
  CHECK(t[1] == "....##......");
  CHECK(t[12] == "..######....");  // row 6 is 01110
  CHECK(t[13] == "..######....");
  CHECK(t[14] == "............");
}

TEST_CASE("text_width and text_height", "[report][font]") {
  CHECK(rp::text_width("") == 0);
  CHECK(rp::text_width("a") == 5);
  CHECK(rp::text_width("abc") == 17);
  CHECK(rp::text_width("abc", 2) == 34);
  CHECK(rp::text_width("\xC3\xA9t\xC3\xA9") == 17);  // "été": three code points
  CHECK(rp::text_height() == 8);
  CHECK(rp::text_height(3) == 24);
}

TEST_CASE("a UTF-8 code point draws as one '?'", "[report][font]") {
  rp::image a(6, 8), b(6, 8);
  rp::draw_text(a, 0, 0, "\xC3\xA9", rp::colours::black);
  rp::draw_text(b, 0, 0, "?", rp::colours::black);
  CHECK(a.bytes() == b.bytes());
}

TEST_CASE("draw_text_vertical is draw_text rotated 90 degrees counter-clockwise", "[report][font]") {
  const std::string s = "Acc (%) gy";
  const int w = rp::text_width(s, 2), h = rp::text_height(2);
  rp::image hor(w, h), ver(h, w);
  rp::draw_text(hor, 0, 0, s, rp::colours::black, 2);
  rp::draw_text_vertical(ver, 0, 0, s, rp::colours::black, 2);
  int set = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      // Rotating CCW: horizontal (x, y) -> vertical (y, w - 1 - x).
      REQUIRE(hor.pixel(x, y) == ver.pixel(y, w - 1 - x));
      set += hor.pixel(x, y) == rp::colours::black;
    }
  CHECK(set > 50);
}

TEST_CASE("text is clipped at the image edges", "[report][font]") {
  rp::image img(10, 10);
  CHECK_NOTHROW(rp::draw_text(img, -7, -3, "Hello", rp::colours::black, 2));
  CHECK_NOTHROW(rp::draw_text_vertical(img, 5, -30, "Hello", rp::colours::black, 2));
  CHECK_NOTHROW(rp::draw_text_centered(img, 5, 8, "a long label", rp::colours::black));
}
