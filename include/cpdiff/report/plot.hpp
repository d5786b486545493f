#pragma once
// Three chart kinds for the evaluation report, each a plain struct of data + labels rendered to an image:
//   bar_chart     grouped bars: categories (conditions) x series ("base", "trained best", ...), e.g. accuracies
//   scatter_plot  2-D points with a group id each (training vs generated latents), optionally coloured by a
//                 continuous value through colour_ramp with a colour bar (the interpolation weight l)
//   line_chart    named (x, y) series (loss curves), optionally on a log y axis
// Non-finite values are skipped (a gap in a line, no bar, no point). Sizes that disagree throw shape_error.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/report/axes.hpp"
#include "cpdiff/report/font.hpp"
#include "cpdiff/report/png.hpp"

namespace cpdiff::report {

struct bar_chart {
  chart_labels labels;
  std::vector<std::string> categories;      // [C] groups along x
  std::vector<std::string> series;          // [S] bars within a group, one legend entry each
  std::vector<std::vector<double>> values;  // [S][C]
  std::optional<double> y_min, y_max;       // default: [min(0, data), max(data)] widened to whole ticks
  bool show_values = false;                 // print each value above its bar (one decimal)
  chart_style style;
};

struct scatter_plot {
  chart_labels labels;
  std::vector<double> x, y;               // [N]
  std::vector<int> group;                 // [N] group id in [0, G); empty: every point in group 0
  std::vector<std::string> group_names;   // [G] legend names (empty: no legend)
  std::vector<marker> group_markers;      // [G] optional; default disc (by group colour) or disc, ring, square...
  std::vector<double> value;              // [N] optional: colour by value, with a colour bar
  double value_min = 0, value_max = 1;    // the colour bar's range
  std::string value_label = "l";
  double marker_radius = 3.5;
  chart_style style;
};

struct line_series {
  std::string name;
  std::vector<double> x, y;  // [P] each
};

struct line_chart {
  chart_labels labels;
  std::vector<line_series> series;
  bool log_y = false;  // points with y <= 0 are skipped on a log axis
  std::optional<double> y_min, y_max;
  int line_width = 2;
  chart_style style;
};

namespace detail {

// Finite min / max of values, or nullopt if none are finite (and positive, when positive_only).
struct range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v, bool positive_only = false) {
    if (!std::isfinite(v) || (positive_only && v <= 0)) return;
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// Ticks for [lo, hi]; ends the caller fixed stay where they are (ticks outside are dropped).
inline tick_set ticks_for(double lo, double hi, std::optional<double> fixed_lo, std::optional<double> fixed_hi,
                          bool log, int target = 6) {
  if (fixed_lo) lo = *fixed_lo;
  if (fixed_hi) hi = *fixed_hi;
  tick_set t = log ? log_ticks(lo, hi) : linear_ticks(lo, hi, target);
  const double eps = log ? 0.0 : t.step * 1e-9;
  if (fixed_lo && fixed_hi && *fixed_hi <= *fixed_lo) return t;  // unusable pair: keep the widened range
  if (fixed_lo) t.lo = *fixed_lo;
  if (fixed_hi) t.hi = *fixed_hi;
  std::erase_if(t.values, [&](double v) { return v < t.lo - eps || v > t.hi + eps; });
  return t;
}

// Liang-Barsky: clip the segment to the area; false when nothing of it is inside.
inline bool clip_segment(double& x0, double& y0, double& x1, double& y1, const plot_area& a) {
  double t0 = 0, t1 = 1;
  const double dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - a.left, a.right - 1 - x0, y0 - a.top, a.bottom - 1 - y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
      continue;
    }
    const double r = q[i] / p[i];
    if (p[i] < 0)
      t0 = std::max(t0, r);
    else
      t1 = std::min(t1, r);
    if (t0 > t1) return false;
  }
  const double ox = x0, oy = y0;
  x0 = ox + t0 * dx, y0 = oy + t0 * dy, x1 = ox + t1 * dx, y1 = oy + t1 * dy;
  return true;
}

inline int px(double v) { return static_cast<int>(std::lround(v)); }

}  // namespace detail

inline image render(const bar_chart& c) {
  const char* where = "report::render(bar_chart)";
  const std::size_t n_cat = c.categories.size(), n_ser = c.series.size();
  CPDIFF_CHECK(n_cat > 0 && n_ser > 0, shape_error, where, "need at least one category and one series, got ", n_cat,
               " categories and ", n_ser, " series");
  CPDIFF_CHECK(c.values.size() == n_ser, shape_error, where, "values has ", c.values.size(), " rows for ", n_ser,
               " series");
  detail::range r;
  r.add(0.0);
  for (std::size_t s = 0; s < n_ser; ++s) {
    CPDIFF_CHECK(c.values[s].size() == n_cat, shape_error, where, "series '", c.series[s], "' has ",
                 c.values[s].size(), " values for ", n_cat, " categories");
    for (double v : c.values[s]) r.add(v);
  }
  const chart_style& st = c.style;
  const tick_set yt = detail::ticks_for(r.lo, r.hi, c.y_min, c.y_max, false);
  std::vector<legend_entry> legend;
  for (std::size_t s = 0; s < n_ser; ++s) legend.push_back({c.series[s], palette(s), swatch::box});
  const int th = text_height(st.text_scale), yw = widest_tick_label(yt, st), lw = legend_width(legend, st);

  // Category names run vertically when any is wider than its slot.
  plot_area a = layout_area(st, c.labels, yw, th, lw, where);
  const double slot = static_cast<double>(a.width()) / static_cast<double>(n_cat);
  int widest = 0;
  for (const auto& name : c.categories) widest = std::max(widest, text_width(name, st.text_scale));
  const bool vertical = widest > slot - 2 * st.text_scale;
  if (vertical) a = layout_area(st, c.labels, yw, widest, lw, where);

  image img(st.width, st.height, st.background);
  const axis_map ym{yt, static_cast<double>(a.bottom - 1), static_cast<double>(a.top)};
  draw_y_axis_and_labels(img, a, ym, c.labels, st);
  const double base = ym(std::clamp(0.0, yt.lo, yt.hi));
  const double group_w = slot * 0.8, bar_w = group_w / static_cast<double>(n_ser);
  for (std::size_t k = 0; k < n_cat; ++k) {
    const double g0 = a.left + slot * static_cast<double>(k) + (slot - group_w) / 2;
    for (std::size_t s = 0; s < n_ser; ++s) {
      const double v = c.values[s][k];
      if (!std::isfinite(v)) continue;
      const int x0 = detail::px(g0 + bar_w * static_cast<double>(s)), x1 = detail::px(g0 + bar_w * (s + 1.0));
      const double top = ym(std::clamp(v, yt.lo, yt.hi));
      const int y0 = detail::px(std::min(top, base)), y1 = detail::px(std::max(top, base));
      img.fill_rect(x0, y0, std::max(1, x1 - x0 - (bar_w >= 4 ? 1 : 0)), std::max(1, y1 - y0), palette(s));
      if (c.show_values) {  // across the bar where it fits with a gap, else running upward, else not at all
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", v);
        const int vs = std::max(1, st.text_scale - 1), tw = text_width(buf, vs);
        if (tw + 4 * vs <= x1 - x0)
          draw_text_centered(img, (x0 + x1) / 2, y0 - text_height(vs) - vs, buf, st.text, vs);
        else if (text_height(vs) <= x1 - x0)
          draw_text_vertical(img, (x0 + x1) / 2 - text_height(vs) / 2, y0 - tw - 2 * vs, buf, st.text, vs);
      }
    }
    const int cx = detail::px(a.left + slot * (k + 0.5)), ty = a.bottom + tick_length(st) + st.text_scale * 2;
    if (vertical)
      draw_text_vertical(img, cx - th / 2, ty, c.categories[k], st.text, st.text_scale);
    else
      draw_text_centered(img, cx, ty, c.categories[k], st.text, st.text_scale);
  }
  draw_legend(img, a.right + st.pad, a.top, legend, st);
  return img;
}

inline image render(const scatter_plot& c) {
  const char* where = "report::render(scatter_plot)";
  const std::size_t n = c.x.size();
  CPDIFF_CHECK(c.y.size() == n, shape_error, where, "x has ", n, " points but y has ", c.y.size());
  CPDIFF_CHECK(c.group.empty() || c.group.size() == n, shape_error, where, "group has ", c.group.size(),
               " ids for ", n, " points");
  CPDIFF_CHECK(c.value.empty() || c.value.size() == n, shape_error, where, "value has ", c.value.size(),
               " entries for ", n, " points");
  int n_groups = c.group_names.empty() ? 1 : static_cast<int>(c.group_names.size());
  for (int g : c.group) {
    CPDIFF_CHECK(g >= 0, shape_error, where, "negative group id ", g);
    n_groups = std::max(n_groups, g + 1);
  }
  const bool by_value = !c.value.empty();
  const chart_style& st = c.style;
  auto shape_of = [&](int g) {
    if (static_cast<std::size_t>(g) < c.group_markers.size()) return c.group_markers[static_cast<std::size_t>(g)];
    return by_value ? static_cast<marker>(g % 4) : marker::disc;
  };
  auto colour_of_group = [&](int g) { return by_value ? rgb{90, 90, 90} : palette(static_cast<std::size_t>(g)); };

  detail::range rx, ry;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(c.x[i]) && std::isfinite(c.y[i])) rx.add(c.x[i]), ry.add(c.y[i]);
  if (rx.empty()) rx.lo = ry.lo = 0, rx.hi = ry.hi = 1;
  auto padded = [](const detail::range& r) {  // 4% air so edge points are not cut by the frame
    const double d = std::max(r.hi - r.lo, 1e-12) * 0.04;
    return std::pair{r.lo - d, r.hi + d};
  };
  const auto [xlo, xhi] = padded(rx);
  const auto [ylo, yhi] = padded(ry);
  // The axes span the data (not widened to whole ticks): a scatter's points should fill the frame.
  const tick_set xt = detail::ticks_for(xlo, xhi, xlo, xhi, false), yt = detail::ticks_for(ylo, yhi, ylo, yhi, false);

  std::vector<legend_entry> legend;
  for (std::size_t g = 0; g < c.group_names.size(); ++g)
    legend.push_back({c.group_names[g], colour_of_group(static_cast<int>(g)), swatch::marker,
                      shape_of(static_cast<int>(g))});
  // Colour bar: a ramp 2 glyphs wide with ticks; its label above it.
  const int th = text_height(st.text_scale), bar_w = 2 * font::advance * st.text_scale;
  const tick_set vt = detail::ticks_for(c.value_min, c.value_max, c.value_min, c.value_max, false, 5);
  const int cbar_w = by_value ? std::max(bar_w + tick_length(st) + st.text_scale * 2 + widest_tick_label(vt, st),
                                         text_width(c.value_label, st.text_scale))
                              : 0;
  const int right_w = std::max(legend_width(legend, st), cbar_w);
  const plot_area a = layout_area(st, c.labels, widest_tick_label(yt, st), th, right_w, where);

  image img(st.width, st.height, st.background);
  const axis_map xm{xt, static_cast<double>(a.left), static_cast<double>(a.right - 1)};
  const axis_map ym{yt, static_cast<double>(a.bottom - 1), static_cast<double>(a.top)};
  draw_y_axis_and_labels(img, a, ym, c.labels, st);
  draw_x_ticks(img, a, xm, st);
  const double span = c.value_max - c.value_min;
  for (int g = 0; g < n_groups; ++g)  // group by group, so a later group (generated points) lies on top
    for (std::size_t i = 0; i < n; ++i) {
      if ((c.group.empty() ? 0 : c.group[i]) != g || !std::isfinite(c.x[i]) || !std::isfinite(c.y[i])) continue;
      const rgb col = by_value ? colour_ramp(span != 0 ? (c.value[i] - c.value_min) / span : 0.5) : colour_of_group(g);
      draw_marker(img, xm(c.x[i]), ym(c.y[i]), c.marker_radius, shape_of(g), col);
    }

  const int rx0 = a.right + st.pad;
  draw_legend(img, rx0, a.top, legend, st);
  if (by_value) {
    const int top = a.top + static_cast<int>(legend.size()) * legend_row_height(st) + (legend.empty() ? 0 : th) + th +
                    st.text_scale * 3;
    const int h = std::max(a.bottom - top - th / 2, 20);
    draw_text(img, rx0, top - th - st.text_scale * 3, c.value_label, st.text, st.text_scale);
    for (int yy = 0; yy < h; ++yy)  // value_max at the top
      img.fill_rect(rx0, top + yy, bar_w, 1, colour_ramp(1.0 - static_cast<double>(yy) / std::max(h - 1, 1)));
    img.rect(rx0 - 1, top - 1, bar_w + 2, h + 2, st.axis);
    const axis_map vm{vt, static_cast<double>(top + h - 1), static_cast<double>(top)};
    for (double v : vt.values) {
      const int py = detail::px(vm(v));
      img.line(rx0 + bar_w, py, rx0 + bar_w + tick_length(st) - 1, py, st.axis);
      draw_text(img, rx0 + bar_w + tick_length(st) + st.text_scale * 2, py - th / 2 + st.text_scale / 2,
                format_tick(v, vt), st.text, st.text_scale);
    }
  }
  return img;
}

inline image render(const line_chart& c) {
  const char* where = "report::render(line_chart)";
  CPDIFF_CHECK(!c.series.empty(), shape_error, where, "no series to draw");
  detail::range rx, ry;
  for (const auto& s : c.series) {
    CPDIFF_CHECK(s.x.size() == s.y.size(), shape_error, where, "series '", s.name, "' has ", s.x.size(),
                 " x values but ", s.y.size(), " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!c.log_y || s.y[i] > 0)) rx.add(s.x[i]), ry.add(s.y[i]);
  }
  if (rx.empty()) rx.lo = 0, rx.hi = 1, ry.lo = c.log_y ? 0.1 : 0, ry.hi = 1;
  const chart_style& st = c.style;
  const tick_set xt = linear_ticks(rx.lo, rx.hi);
  const tick_set yt = detail::ticks_for(ry.lo, ry.hi, c.y_min, c.y_max, c.log_y);
  std::vector<legend_entry> legend;
  for (std::size_t s = 0; s < c.series.size(); ++s) legend.push_back({c.series[s].name, palette(s), swatch::line});
  const plot_area a = layout_area(st, c.labels, widest_tick_label(yt, st), text_height(st.text_scale),
                                  legend_width(legend, st), where);

  image img(st.width, st.height, st.background);
  const axis_map xm{xt, static_cast<double>(a.left), static_cast<double>(a.right - 1)};
  const axis_map ym{yt, static_cast<double>(a.bottom - 1), static_cast<double>(a.top)};
  draw_y_axis_and_labels(img, a, ym, c.labels, st);
  draw_x_ticks(img, a, xm, st);
  for (std::size_t s = 0; s < c.series.size(); ++s) {
    const line_series& ls = c.series[s];
    bool have_prev = false;
    double px0 = 0, py0 = 0;
    for (std::size_t i = 0; i < ls.x.size(); ++i) {
      const bool ok = std::isfinite(ls.x[i]) && std::isfinite(ls.y[i]) && (!c.log_y || ls.y[i] > 0);
      if (!ok) {
        have_prev = false;  // a gap in the line
        continue;
      }
      const double px1 = xm(ls.x[i]), py1 = ym(ls.y[i]);
      double ax = have_prev ? px0 : px1, ay = have_prev ? py0 : py1, bx = px1, by = py1;
      if (detail::clip_segment(ax, ay, bx, by, a))
        img.line(detail::px(ax), detail::px(ay), detail::px(bx), detail::px(by), palette(s), c.line_width);
      px0 = px1, py0 = py1, have_prev = true;
    }
  }
  draw_legend(img, a.right + st.pad, a.top, legend, st);
  return img;
}

// Render and write a chart as PNG (atomically).
template <class Chart>
  requires requires(const Chart& c) { render(c); }
void save_png(const std::filesystem::path& path, const Chart& c) {
  write_png(path, render(c));
}

}  // namespace cpdiff::report
