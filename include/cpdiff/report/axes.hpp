#pragma once
// The parts that every chart in plot.hpp shares: style, "nice" ticks, value -> pixel maps, colour palette
// and ramp, markers, legend, and the layout and drawing of the frame (title, axis labels, ticks, grid).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/report/font.hpp"
#include "cpdiff/report/png.hpp"

namespace cpdiff::report {

struct chart_style {
  int width = 960, height = 600;  // image size in pixels
  int text_scale = 2;             // font scale of ticks, axis labels and legend (a glyph row is 8 * scale)
  int title_scale = 3;
  int pad = 14;  // gap between the image edge, texts and the plot area
  rgb background = colours::white, axis = {40, 40, 40}, grid = {228, 228, 228}, text = {20, 20, 20};
};

struct chart_labels {
  std::string title, x_label, y_label;
};

// Tick positions of one axis; [lo, hi] is the axis range (snapped outward to whole steps).
struct tick_set {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
  bool log = false;  // values are powers of ten, placed logarithmically
};

// A step of 1, 2 or 5 times a power of ten giving about `target` intervals over [lo, hi], with the range
// widened to whole steps. A degenerate range (lo == hi) is widened around the value first.
inline tick_set linear_ticks(double lo, double hi, int target = 6) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(lo))) {
    const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d, hi += d;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * mag * (1 + 1e-9)) {
      step = m * mag;
      break;
    }
  tick_set t;
  t.step = step;
  t.lo = std::floor(lo / step + 1e-9) * step;
  t.hi = std::ceil(hi / step - 1e-9) * step;
  const long long n = std::llround((t.hi - t.lo) / step);
  for (long long i = 0; i <= n; ++i) {
    const double v = t.lo + static_cast<double>(i) * step;
    t.values.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);  // no "-0"
  }
  return t;
}

// Decades covering [lo, hi] (both > 0): ticks at every power of ten, thinned to at most ~8 labels.
inline tick_set log_ticks(double lo, double hi) {
  CPDIFF_CHECK(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi), config_error, "report::log_ticks",
               "a log axis needs a positive finite range, got [", lo, ", ", hi, "]");
  if (hi < lo) std::swap(lo, hi);
  int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e1 == e0) ++e1;
  const int every = (e1 - e0 + 7) / 8;  // label every k-th decade when there are many
  tick_set t;
  t.log = true;
  t.lo = std::pow(10.0, e0);
  t.hi = std::pow(10.0, e1);
  t.step = every;
  for (int e = e0; e <= e1; e += every) t.values.push_back(std::pow(10.0, e));
  return t;
}

// Tick label text: as many decimals as the step needs for linear ticks; 10^e as "1e<e>" outside
// [1e-3, 1e4] on log axes.
inline std::string format_tick(double v, const tick_set& t) {
  char buf[64];
  if (t.log) {
    const int e = static_cast<int>(std::lround(std::log10(v)));
    if (e >= -3 && e <= 4)
      std::snprintf(buf, sizeof buf, "%.*f", std::max(0, -e), v);
    else
      std::snprintf(buf, sizeof buf, "1e%d", e);
    return buf;
  }
  const double big = std::max(std::abs(t.lo), std::abs(t.hi));
  if (big >= 1e7 || t.step < 1e-6) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(t.step) + 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Maps a data value on an axis with ticks t to a pixel coordinate: t.lo -> p0, t.hi -> p1.
struct axis_map {
  tick_set t;
  double p0 = 0, p1 = 1;
  double operator()(double v) const {
    if (t.log) return p0 + (std::log10(v) - std::log10(t.lo)) / (std::log10(t.hi) - std::log10(t.lo)) * (p1 - p0);
    return p0 + (v - t.lo) / (t.hi - t.lo) * (p1 - p0);
  }
};

// Ten categorical colours, distinguishable and colour-blind friendlier than pure primaries.
inline rgb palette(std::size_t i) {
  static constexpr std::array<rgb, 10> p{{{31, 119, 180},
                                          {255, 127, 14},
                                          {44, 160, 44},
                                          {214, 39, 40},
                                          {148, 103, 189},
                                          {140, 86, 75},
                                          {227, 119, 194},
                                          {127, 127, 127},
                                          {188, 189, 34},
                                          {23, 190, 207}}};
  return p[i % p.size()];
}

// A perceptually ordered ramp (dark violet -> blue -> green -> yellow, like viridis) for t in [0, 1].
inline rgb colour_ramp(double t) {
  static constexpr std::array<rgb, 5> stops{{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * (stops.size() - 1);
  const std::size_t i = std::min(static_cast<std::size_t>(t), stops.size() - 2);
  return mix(stops[i], stops[i + 1], t - static_cast<double>(i));
}

enum class marker { disc, ring, square, diamond };
enum class swatch { box, line, marker };

// A marker of radius r centred on (cx, cy).
inline void draw_marker(image& img, double cx, double cy, double r, marker m, rgb c) {
  const int x = static_cast<int>(std::lround(cx)), y = static_cast<int>(std::lround(cy));
  const int ri = std::max(1, static_cast<int>(std::lround(r)));
  switch (m) {
    case marker::disc: img.circle(cx, cy, r, c); break;
    case marker::ring:
      img.circle(cx, cy, r, c);
      img.circle(cx, cy, std::max(r - 1.6, 0.0), colours::white);
      break;
    case marker::square: img.fill_rect(x - ri, y - ri, 2 * ri + 1, 2 * ri + 1, c); break;
    case marker::diamond:
      for (int dy = -ri - 1; dy <= ri + 1; ++dy) {
        const int half = ri + 1 - std::abs(dy);
        img.fill_rect(x - half, y + dy, 2 * half + 1, 1, c);
      }
      break;
  }
}

struct legend_entry {
  std::string name;
  rgb colour;
  swatch kind = swatch::box;
  marker shape = marker::disc;  // for swatch::marker
};

// Legend geometry: one row per entry, a 2-glyph-wide swatch then the name.
inline int legend_row_height(const chart_style& s) { return text_height(s.text_scale) + s.text_scale * 4; }
inline int legend_width(const std::vector<legend_entry>& es, const chart_style& s) {
  int w = 0;
  for (const auto& e : es) w = std::max(w, text_width(e.name, s.text_scale));
  return es.empty() ? 0 : w + 5 * font::advance * s.text_scale / 2 + 2 * s.text_scale;
}

// Draw the legend with its top-left corner at (x, y).
inline void draw_legend(image& img, int x, int y, const std::vector<legend_entry>& es, const chart_style& s) {
  const int th = text_height(s.text_scale), sw = 2 * font::advance * s.text_scale;
  for (std::size_t i = 0; i < es.size(); ++i) {
    const legend_entry& e = es[i];
    const int ry = y + static_cast<int>(i) * legend_row_height(s), cy = ry + th / 2 - s.text_scale / 2;
    switch (e.kind) {
      case swatch::box: img.fill_rect(x, ry, sw, th - s.text_scale, e.colour); break;
      case swatch::line: img.line(x, cy, x + sw - 1, cy, e.colour, std::max(2, s.text_scale)); break;
      case swatch::marker: draw_marker(img, x + sw / 2.0, cy, 1.5 * s.text_scale + 1, e.shape, e.colour); break;
    }
    draw_text(img, x + sw + font::advance * s.text_scale / 2, ry, e.name, s.text, s.text_scale);
  }
}

// The plot area inside the image: pixels x in [left, right), y in [top, bottom).
struct plot_area {
  int left = 0, top = 0, right = 0, bottom = 0;
  int width() const { return right - left; }
  int height() const { return bottom - top; }
};

inline int tick_length(const chart_style& s) { return 3 * s.text_scale; }

inline int widest_tick_label(const tick_set& t, const chart_style& s) {
  int w = 0;
  for (double v : t.values) w = std::max(w, text_width(format_tick(v, t), s.text_scale));
  return w;
}

// Margins: title on top; y label (vertical) and y tick labels on the left; x tick labels (x_ticks_h
// pixels tall) and x label below; `right_w` pixels on the right for a legend or colour bar.
inline plot_area layout_area(const chart_style& s, const chart_labels& l, int y_ticks_w, int x_ticks_h, int right_w,
                             const char* where) {
  const int th = text_height(s.text_scale), tick = tick_length(s);
  plot_area a;
  a.top = s.pad + (l.title.empty() ? 0 : text_height(s.title_scale) + s.pad) + th / 2;
  a.left = s.pad + (l.y_label.empty() ? 0 : th + s.pad) + y_ticks_w + tick + s.text_scale * 2;
  a.bottom = s.height - (s.pad + (l.x_label.empty() ? 0 : th + s.pad) + x_ticks_h + tick + s.text_scale * 2);
  // Without a right column, leave room for half of the last x tick label (which is centred on the edge).
  a.right = s.width - (s.pad + (right_w > 0 ? right_w + s.pad : 3 * font::advance * s.text_scale));
  CPDIFF_CHECK(a.width() >= 40 && a.height() >= 40, config_error, where, "a ", s.width, " x ", s.height,
               " image leaves no room for the plot area (", a.width(), " x ", a.height(),
               " pixels): enlarge the chart or lower text_scale");
  return a;
}

// Horizontal grid at the y ticks, y tick marks and labels, the axis lines, the title, and the axis labels.
inline void draw_y_axis_and_labels(image& img, const plot_area& a, const axis_map& ym, const chart_labels& l,
                                   const chart_style& s) {
  const int th = text_height(s.text_scale), tick = tick_length(s);
  for (double v : ym.t.values) {
    const int py = static_cast<int>(std::lround(ym(v)));
    if (py > a.top && py < a.bottom - 1) img.line(a.left + 1, py, a.right - 1, py, s.grid);
    img.line(a.left - tick, py, a.left - 1, py, s.axis, std::max(1, s.text_scale / 2));
    const std::string txt = format_tick(v, ym.t);
    draw_text(img, a.left - tick - s.text_scale * 2 - text_width(txt, s.text_scale), py - th / 2 + s.text_scale / 2,
              txt, s.text, s.text_scale);
  }
  img.fill_rect(a.left - 1, a.top, std::max(1, s.text_scale / 2) + 1, a.height(), s.axis);     // y axis
  img.fill_rect(a.left - 1, a.bottom - 1, a.width() + 1, std::max(1, s.text_scale / 2) + 1, s.axis);  // x axis
  if (!l.title.empty())
    draw_text_centered(img, (a.left + a.right) / 2, s.pad, l.title, s.text, s.title_scale);
  if (!l.x_label.empty())
    draw_text_centered(img, (a.left + a.right) / 2, s.height - s.pad - th, l.x_label, s.text, s.text_scale);
  if (!l.y_label.empty())
    draw_text_vertical(img, s.pad, (a.top + a.bottom) / 2 - text_width(l.y_label, s.text_scale) / 2, l.y_label,
                       s.text, s.text_scale);
}

// Tick marks and centred labels under the x axis (numeric x axes).
inline void draw_x_ticks(image& img, const plot_area& a, const axis_map& xm, const chart_style& s) {
  const int tick = tick_length(s);
  for (double v : xm.t.values) {
    const int px = static_cast<int>(std::lround(xm(v)));
    img.line(px, a.bottom, px, a.bottom + tick - 1, s.axis, std::max(1, s.text_scale / 2));
    draw_text_centered(img, px, a.bottom + tick + s.text_scale * 2, format_tick(v, xm.t), s.text, s.text_scale);
  }
}

}  // namespace cpdiff::report
