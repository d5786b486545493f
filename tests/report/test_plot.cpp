#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/report/plot.hpp"
#include "io/io_test_util.hpp"
#include "report/png_reader.hpp"

namespace rp = cpdiff::report;

namespace {

int count_in(const rp::image& img, int x0, int y0, int x1, int y1, rp::rgb c) {
  int n = 0;
  for (int y = std::max(y0, 0); y < std::min(y1, img.height()); ++y)
    for (int x = std::max(x0, 0); x < std::min(x1, img.width()); ++x) n += img.pixel(x, y) == c;
  return n;
}
int count_not(const rp::image& img, int x0, int y0, int x1, int y1, rp::rgb c) {
  return (std::min(x1, img.width()) - std::max(x0, 0)) * (std::min(y1, img.height()) - std::max(y0, 0)) -
         count_in(img, x0, y0, x1, y1, c);
}
// Longest vertical run of colour c in columns [x0, x1).
int tallest_run(const rp::image& img, int x0, int x1, rp::rgb c) {
  int best = 0;
  for (int x = x0; x < x1; ++x) {
    int run = 0;
    for (int y = 0; y < img.height(); ++y) {
      run = img.pixel(x, y) == c ? run + 1 : 0;
      best = std::max(best, run);
    }
  }
  return best;
}

rp::bar_chart sample_bars() {
  rp::bar_chart c;
  c.labels = {"Accuracy per condition", "condition", "accuracy (%)"};
  c.categories = {"RTE", "MRPC", "CoLA", "QNLI", "STS-B"};
  c.series = {"base", "trained best", "generated best", "generated mean"};
  c.values = {{52.7, 68.4, 0.0, 50.5, 10.2},
              {68.6, 87.0, 50.2, 91.9, 87.3},
              {66.1, 86.8, 49.9, 91.9, 87.2},
              {64.0, 85.1, 47.3, 91.2, 86.0}};
  c.show_values = true;
  return c;
}

}  // namespace

TEST_CASE("linear_ticks picks 1-2-5 steps and widens the range to whole steps", "[report][plot]") {
  auto t = rp::linear_ticks(0, 100);
  CHECK(t.step == Approx(20));
  CHECK(t.values == std::vector<double>{0, 20, 40, 60, 80, 100});
  t = rp::linear_ticks(0.13, 0.87);
  CHECK(t.step == Approx(0.2));
  CHECK(t.lo == Approx(0));
  CHECK(t.hi == Approx(1));
  REQUIRE(t.values.size() == 6);
  CHECK(rp::format_tick(t.values[3], t) == "0.6");
  t = rp::linear_ticks(-3.2, 7.9);
  CHECK(t.step == Approx(2));
  CHECK(t.lo == Approx(-4));
  CHECK(t.hi == Approx(8));
  CHECK(rp::format_tick(t.values[2], t) == "0");  // not "-0"
  t = rp::linear_ticks(5, 5);  // degenerate: widened around the value
  CHECK(t.lo < 5);
  CHECK(t.hi > 5);
  t = rp::linear_ticks(0, 0.0004);
  CHECK(rp::format_tick(t.values[1], t) == "0.0001");
}

TEST_CASE("log_ticks puts ticks on decades", "[report][plot]") {
  const auto t = rp::log_ticks(0.003, 2);
  CHECK(t.log);
  CHECK(t.lo == Approx(1e-3));
  CHECK(t.hi == Approx(10));
  REQUIRE(t.values.size() == 5);
  CHECK(rp::format_tick(t.values[0], t) == "0.001");
  CHECK(rp::format_tick(t.values[4], t) == "10");
  const auto w = rp::log_ticks(1e-9, 1);
  CHECK(rp::format_tick(w.values[0], w) == "1e-9");
  CHECK(w.values.size() <= 9);
  CHECK_THROWS_AS(rp::log_ticks(0, 1), cpdiff::config_error);
}

TEST_CASE("colour_ramp runs from violet to yellow", "[report][plot]") {
  CHECK(rp::colour_ramp(0) == rp::rgb{68, 1, 84});
  CHECK(rp::colour_ramp(1) == rp::rgb{253, 231, 37});
  CHECK(rp::colour_ramp(-3) == rp::colour_ramp(0));
  CHECK(rp::colour_ramp(0.5) == rp::rgb{33, 145, 140});
}

TEST_CASE("bar_chart renders bars with heights proportional to values, a title and a legend", "[report][plot]") {
  rp::bar_chart c;
  c.labels = {"Title", "x", "y"};
  c.categories = {"a", "b"};
  c.series = {"s"};
  c.values = {{25, 100}};
  c.y_min = 0;
  c.y_max = 100;
  c.style.width = 640;
  c.style.height = 400;
  const rp::image img = rp::render(c);
  REQUIRE(img.width() == 640);
  REQUIRE(img.height() == 400);
  const rp::rgb bar = rp::palette(0);
  const int left = tallest_run(img, 0, 320, bar), right = tallest_run(img, 320, 500, bar);
  CHECK(left > 50);
  CHECK(right / static_cast<double>(left) == Approx(4.0).epsilon(0.03));
  CHECK(count_not(img, 0, 0, 640, c.style.pad + rp::text_height(c.style.title_scale), c.style.background) > 30);
  CHECK(count_in(img, 560, 0, 640, 400, bar) > 20);  // the legend's swatch on the right
}

TEST_CASE("bar_chart with many long category names still renders (names run vertically)", "[report][plot]") {
  auto c = sample_bars();
  for (auto& name : c.categories) name = "condition " + name;
  const rp::image img = rp::render(c);
  CHECK(img.width() == c.style.width);
  for (std::size_t s = 0; s < c.series.size(); ++s) CHECK(count_in(img, 0, 0, img.width(), img.height(), rp::palette(s)) > 100);
}

TEST_CASE("bar_chart rejects sizes that disagree and images too small", "[report][plot]") {
  auto c = sample_bars();
  c.values[2].pop_back();
  CHECK_THROWS_WITH(rp::render(c), Catch::Contains("generated best") && Catch::Contains("bar_chart"));
  c = sample_bars();
  c.values.pop_back();
  CHECK_THROWS_AS(rp::render(c), cpdiff::shape_error);
  c = sample_bars();
  c.style.width = 120;
  CHECK_THROWS_AS(rp::render(c), cpdiff::config_error);
}

TEST_CASE("scatter_plot places groups in their colours and points where their coordinates say", "[report][plot]") {
  rp::scatter_plot c;
  c.labels = {"PCA of latents", "PC 1", "PC 2"};
  c.x = {0, 1, 0.5};
  c.y = {0, 1, 0.5};
  c.group = {0, 1, 0};
  c.marker_radius = 5;  // no group names: no legend, so every pixel in a group colour is a marker
  c.style.width = 800;
  c.style.height = 500;
  const rp::image img = rp::render(c);
  REQUIRE(img.width() == 800);
  // The group-1 point is at the top-right of the data, the group-0 ones at the bottom-left and middle.
  int gx = 0, gy = 0, n1 = 0, lx = 1 << 30;
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) {
      if (img.pixel(x, y) == rp::palette(1)) gx += x, gy += y, ++n1;
      if (img.pixel(x, y) == rp::palette(0)) lx = std::min(lx, x);
    }
  REQUIRE(n1 > 20);
  CHECK(gx / n1 > lx + 300);
  CHECK(gy / n1 < 150);
  c.group_names = {"trained", "generated"};
  CHECK(count_in(rp::render(c), 640, 0, 800, 150, rp::palette(1)) > n1 / 2);  // the legend's marker
  CHECK_THROWS_AS(rp::render([&] { auto d = c; d.group.pop_back(); return d; }()), cpdiff::shape_error);
}

TEST_CASE("scatter_plot colours by value with a colour bar", "[report][plot]") {
  rp::scatter_plot c;
  for (int i = 0; i <= 100; ++i) {
    const double l = i / 100.0;
    c.x.push_back(std::cos(3 * l));
    c.y.push_back(std::sin(3 * l));
    c.value.push_back(l);
    c.group.push_back(i % 2);
  }
  c.group_names = {"training", "generated"};
  const rp::image img = rp::render(c);
  // The colour bar holds the ramp's end colours; the plot area holds mid-ramp colours from the points.
  CHECK(count_in(img, 700, 0, img.width(), img.height(), rp::colour_ramp(1)) > 10);
  CHECK(count_in(img, 700, 0, img.width(), img.height(), rp::colour_ramp(0)) > 10);
  CHECK(count_not(img, 150, 50, 650, 500, c.style.background) > 1000);
}

TEST_CASE("line_chart draws each series as a line, on a log axis too", "[report][plot]") {
  rp::line_chart c;
  c.labels = {"Training loss", "step", "loss"};
  c.log_y = true;
  rp::line_series a{"autoencoder", {}, {}}, b{"diffusion", {}, {}};
  for (int i = 0; i <= 200; ++i) {
    a.x.push_back(i);
    a.y.push_back(2.0 * std::exp(-i / 30.0) + 1e-3);
    b.x.push_back(i);
    b.y.push_back(i == 100 ? std::nan("") : 0.5 / (1 + i));
  }
  c.series = {a, b};
  const rp::image img = rp::render(c);
  const rp::rgb ca = rp::palette(0);
  // Series a falls: its leftmost pixels lie higher (smaller y) than its rightmost.
  int first_x = 1 << 30, last_x = -1, first_y = 0, last_y = 0;
  for (int x = 0; x < 700; ++x)
    for (int y = 0; y < img.height(); ++y)
      if (img.pixel(x, y) == ca) {
        if (x < first_x) first_x = x, first_y = y;
        if (x > last_x) last_x = x, last_y = y;
      }
  REQUIRE(last_x > first_x + 300);
  CHECK(first_y + 200 < last_y);
  CHECK(count_in(img, 0, 0, 700, img.height(), rp::palette(1)) > 300);
}

TEST_CASE("save_png writes a chart that decodes at the requested size", "[report][plot]") {
  cpdiff_io_test::temp_dir d;
  auto c = sample_bars();
  c.style.width = 500;
  c.style.height = 320;
  c.style.text_scale = 1;
  c.style.title_scale = 2;
  rp::save_png(d / "bars.png", c);
  const auto png = cpdiff_report_test::decode_png(cpdiff_report_test::read_file(d / "bars.png"));
  CHECK(png.width == 500);
  CHECK(png.height == 320);
}

// Not run by default: renders one sample of each chart for a person to look at.
// cpdiff_test_report_plot "[samples]" writes them to $CPDIFF_SAMPLES_DIR (default /tmp/cpdiff_report_samples).
TEST_CASE("render sample charts", "[.][samples]") {
  const char* env = std::getenv("CPDIFF_SAMPLES_DIR");
  const std::filesystem::path dir = env ? env : "/tmp/cpdiff_report_samples";
  std::filesystem::create_directories(dir);
  rp::save_png(dir / "bars.png", sample_bars());
  rp::bar_chart many;  // ten interpolation conditions: names too wide for their slots run vertically
  many.labels = {"Style accuracy, unseen l", "condition", "accuracy (%)"};
  many.series = {"trained best", "generated best", "generated mean"};
  many.values.resize(3);
  for (int i = 0; i < 10; ++i) {
    many.categories.push_back("l=0.0" + std::to_string(i) + "5");
    for (int s = 0; s < 3; ++s) many.values[static_cast<std::size_t>(s)].push_back(80 + 3 * std::sin(i + s) - 2 * s);
  }
  many.y_min = 70;
  many.y_max = 90;
  many.style.width = 720;
  many.style.height = 420;
  many.style.text_scale = 1;
  many.style.title_scale = 2;
  rp::save_png(dir / "bars_many.png", many);
  many.style = rp::chart_style{};
  many.style.width = 800;
  rp::save_png(dir / "bars_vertical_names.png", many);

  rp::scatter_plot s;
  s.labels = {"PCA of latents (colour: l)", "PC 1", "PC 2"};
  for (int i = 0; i < 1000; i += 7) {
    const double l = i / 1000.0;
    const bool seen = static_cast<int>(l * 10) % 2 == 1;
    s.x.push_back(std::cos(3 * l) * (1 + 0.05 * std::sin(40 * l)));
    s.y.push_back(std::sin(3 * l) * (1 + 0.05 * std::cos(33 * l)));
    s.value.push_back(l);
    s.group.push_back(seen ? 0 : 1);
  }
  s.group_names = {"training (seen l)", "generated (unseen l)"};
  rp::save_png(dir / "scatter_value.png", s);
  rp::scatter_plot g = s;
  g.value.clear();
  g.labels.title = "PCA of latents";
  rp::save_png(dir / "scatter_groups.png", g);

  rp::line_chart lc;
  lc.labels = {"Training loss", "step", "loss"};
  lc.log_y = true;
  rp::line_series a{"autoencoder", {}, {}}, b{"diffusion", {}, {}};
  for (int i = 0; i <= 3000; i += 10) {
    a.x.push_back(i);
    a.y.push_back(0.8 * std::exp(-i / 400.0) + 2e-3 * (1 + 0.3 * std::sin(i / 17.0)));
    b.x.push_back(i);
    b.y.push_back(1.0 / (1 + i / 50.0) + 0.02 * (1 + 0.5 * std::sin(i / 7.0)));
  }
  lc.series = {a, b};
  rp::save_png(dir / "loss.png", lc);
  lc.log_y = false;
  rp::save_png(dir / "loss_linear.png", lc);

  rp::image sheet(16 * 6 * 3 + 12, 6 * 9 * 3 + 12);
  for (int c = 32; c <= 126; ++c)
    rp::draw_text(sheet, 6 + (c - 32) % 16 * 18, 6 + (c - 32) / 16 * 27, std::string(1, static_cast<char>(c)),
                  rp::colours::black, 3);
  rp::write_png(dir / "font.png", sheet);
  rp::image words(700, 200);
  rp::draw_text(words, 6, 6, "l=0.150 1il| trained_best (%) gjpqy", rp::colours::black, 2);
  rp::draw_text(words, 6, 40, "The quick brown fox jumps over the lazy dog.", rp::colours::black, 2);
  rp::draw_text(words, 6, 74, "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG 0123456789", rp::colours::black, 2);
  rp::draw_text(words, 6, 108, "generated mean: 91.2 +- 0.4; MRPC F1 = 87.0 @ step 1e-3", rp::colours::black, 1);
  rp::write_png(dir / "words.png", words);
}
