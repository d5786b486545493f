#pragma once
// Image "styles": deterministic transformations of grey images that define shifted domains for the
// LoRA tasks (a frozen classifier trained on clean Fashion-MNIST loses accuracy on styled images and
// a LoRA fine-tuned on them wins it back). A style is a small value type with a name and parameters:
//   data::style s = data::style::rotate(30);
//   std::vector<float> y = s.apply(images);            // images [n, 28 * 28] in [0, 1] -> y [n, 28 * 28]
//   s.name() == "rotate(30)", s.kind_name() == "rotate", s.parameter() == 30
// Conventions (pixel (r, c), r = row from the top, c = column from the left; outside the image is the
// background, 0, as in Fashion-MNIST):
//   identity            y = x
//   invert              y = 1 - x
//   rotate(deg)         counter-clockwise as displayed, about the centre ((cols-1)/2, (rows-1)/2), bilinear,
//                       0 outside; multiples of 90 on square images (and of 180 on any image) are exact
//                       index permutations (rotate(90) is numpy's rot90: y[r][c] = x[c][n-1-r])
//   hflip               y[r][c] = x[r][cols-1-c]
//   blur(sigma)         separable Gaussian, radius ceil(3 sigma), weights normalised to 1, zero padding
//   edges               Sobel magnitude sqrt(gx^2 + gy^2) (3x3, zero padding), divided by the image's
//                       largest magnitude (a flat image gives 0)
//   noise(std, seed)    y = clamp(x + std * N_i, 0, 1), N_i = philox_normal(seed, image index, pixel index):
//                       the same input array and seed give the same output on any machine
//   contrast(f)         y = clamp(f x + (1 - f) mean(x), 0, 1), mean over the image (torchvision's
//                       adjust_contrast)
//   interpolate(a,b,l)  y = (1 - l) a(x) + l b(x), pixel-wise
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"

namespace cpdiff::data {

enum class style_kind { identity, invert, rotate, hflip, blur, edges, noise, contrast, interpolate };

// The size of one image; Fashion-MNIST's by default.
struct image_size {
  std::size_t rows = 28, cols = 28;
  std::size_t pixels() const { return rows * cols; }
};

class style {
 public:
  style() = default;  // identity

  static style identity() { return {}; }
  static style invert() { return style(style_kind::invert); }
  static style hflip() { return style(style_kind::hflip); }
  static style edges() { return style(style_kind::edges); }
  static style rotate(double degrees) {
    CPDIFF_CHECK(std::isfinite(degrees), config_error, "data::style::rotate", "angle must be finite, got ", degrees);
    return style(style_kind::rotate, degrees);
  }
  static style blur(double sigma) {
    CPDIFF_CHECK(sigma > 0 && sigma <= 100, config_error, "data::style::blur", "sigma must be in (0, 100], got ", sigma);
    return style(style_kind::blur, sigma);
  }
  static style noise(double stddev, std::uint64_t seed) {
    CPDIFF_CHECK(stddev >= 0 && std::isfinite(stddev), config_error, "data::style::noise",
                 "stddev must be finite and >= 0, got ", stddev);
    style s(style_kind::noise, stddev);
    s.seed_ = seed;
    return s;
  }
  static style contrast(double factor) {
    CPDIFF_CHECK(factor >= 0 && std::isfinite(factor), config_error, "data::style::contrast",
                 "factor must be finite and >= 0, got ", factor);
    return style(style_kind::contrast, factor);
  }
  // (1 - l) a(x) + l b(x); l in [0, 1].
  static style interpolate(const style& a, const style& b, double l) {
    CPDIFF_CHECK(l >= 0 && l <= 1, config_error, "data::style::interpolate", "l must be in [0, 1], got ", l);
    style s(style_kind::interpolate, l);
    s.parts_ = {a, b};
    return s;
  }

  style_kind kind() const { return kind_; }
  // The angle (rotate), sigma (blur), stddev (noise), factor (contrast) or l (interpolate); 0 otherwise.
  double parameter() const { return param_; }
  std::uint64_t seed() const { return seed_; }
  // The two styles an interpolation mixes (empty otherwise).
  const std::vector<style>& parts() const { return parts_; }

  const char* kind_name() const {
    switch (kind_) {
      case style_kind::identity: return "identity";
      case style_kind::invert: return "invert";
      case style_kind::rotate: return "rotate";
      case style_kind::hflip: return "hflip";
      case style_kind::blur: return "blur";
      case style_kind::edges: return "edges";
      case style_kind::noise: return "noise";
      case style_kind::contrast: return "contrast";
      case style_kind::interpolate: return "interpolate";
    }
    return "?";
  }
  // The kind with its parameters: "rotate(30)", "noise(0.2,seed=7)", "interpolate(invert,hflip,0.25)".
  std::string name() const {
    std::ostringstream os;
    os << kind_name();
    switch (kind_) {
      case style_kind::rotate:
      case style_kind::blur:
      case style_kind::contrast: os << '(' << param_ << ')'; break;
      case style_kind::noise: os << '(' << param_ << ",seed=" << seed_ << ')'; break;
      case style_kind::interpolate: os << '(' << parts_[0].name() << ',' << parts_[1].name() << ',' << param_ << ')'; break;
      default: break;
    }
    return os.str();
  }

  friend bool operator==(const style&, const style&) = default;

  // images [n, rows * cols] -> styled images, same shape.
  std::vector<float> apply(std::span<const float> images, image_size sz = {}) const {
    CPDIFF_CHECK(sz.rows > 0 && sz.cols > 0 && images.size() % sz.pixels() == 0, shape_error, "data::style::apply",
                 "style '", name(), "': ", images.size(), " values are not a whole number of ", sz.rows, "x", sz.cols,
                 " images");
    std::vector<float> out(images.size());
    const std::size_t n = images.size() / sz.pixels(), p = sz.pixels();
    if (kind_ == style_kind::interpolate) {
      // y = (1 - l) a(x) + l b(x)
      const std::vector<float> a = parts_[0].apply(images, sz), b = parts_[1].apply(images, sz);
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<float>((1 - param_) * double(a[i]) + param_ * double(b[i]));
      return out;
    }
#pragma omp parallel for if (n > 256)
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(n); ++k) {
      const std::size_t i = static_cast<std::size_t>(k);
      apply_one(images.data() + i * p, out.data() + i * p, sz, i);
    }
    return out;
  }

 private:
  explicit style(style_kind k, double p = 0) : kind_(k), param_(p) {}

  // One image x [rows, cols] -> y [rows, cols]; `index` is its position in the batch (for noise).
  void apply_one(const float* x, float* y, image_size sz, std::size_t index) const {
    const std::size_t R = sz.rows, C = sz.cols, P = R * C;
    switch (kind_) {
      case style_kind::identity: std::copy(x, x + P, y); return;
      case style_kind::invert:
        for (std::size_t i = 0; i < P; ++i) y[i] = 1.0f - x[i];
        return;
      case style_kind::hflip:
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t c = 0; c < C; ++c) y[r * C + c] = x[r * C + (C - 1 - c)];
        return;
      case style_kind::rotate: rotate_one(x, y, sz); return;
      case style_kind::blur: blur_one(x, y, sz); return;
      case style_kind::edges: edges_one(x, y, sz); return;
      case style_kind::noise:
        for (std::size_t i = 0; i < P; ++i) {
          const double v = double(x[i]) + param_ * double(philox_normal(seed_, index, i));
          y[i] = static_cast<float>(std::clamp(v, 0.0, 1.0));
        }
        return;
      case style_kind::contrast: {
        double mean = 0;
        for (std::size_t i = 0; i < P; ++i) mean += x[i];
        mean /= double(P);
        for (std::size_t i = 0; i < P; ++i)
          y[i] = static_cast<float>(std::clamp(param_ * double(x[i]) + (1 - param_) * mean, 0.0, 1.0));
        return;
      }
      case style_kind::interpolate: return;  // handled in apply()
    }
  }

  void rotate_one(const float* x, float* y, image_size sz) const {
    const std::size_t R = sz.rows, C = sz.cols;
    const double quarter = param_ / 90.0;
    const long long k = std::llround(quarter);
    const int k4 = static_cast<int>(((k % 4) + 4) % 4);
    if (std::abs(quarter - double(k)) < 1e-12 && (R == C || k4 % 2 == 0)) {
      // Exact: pixel centres land on pixel centres.
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t c = 0; c < C; ++c) {
          std::size_t sr = r, sc = c;
          if (k4 == 1) sr = c, sc = C - 1 - r;          // rot90:  y[r][c] = x[c][n-1-r]
          if (k4 == 2) sr = R - 1 - r, sc = C - 1 - c;  // rot180
          if (k4 == 3) sr = R - 1 - c, sc = r;          // rot270: y[r][c] = x[n-1-c][r]
          y[r * C + c] = x[sr * C + sc];
        }
      return;
    }
    const double th = param_ * std::numbers::pi / 180.0, cs = std::cos(th), sn = std::sin(th);
    const double cx = (double(C) - 1) / 2, cy = (double(R) - 1) / 2;
    auto at = [&](long long r, long long c) -> double {
      return r < 0 || c < 0 || r >= (long long)R || c >= (long long)C ? 0.0 : double(x[r * (long long)C + c]);
    };
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c = 0; c < C; ++c) {
        // (u, v): the output pixel relative to the centre, v pointing up; source = R(-theta) (u, v)
        const double u = double(c) - cx, v = cy - double(r);
        const double su = u * cs + v * sn, sv = -u * sn + v * cs;
        const double sc = cx + su, sr = cy - sv;
        const double r0 = std::floor(sr), c0 = std::floor(sc), fr = sr - r0, fc = sc - c0;
        const long long ir = (long long)r0, ic = (long long)c0;
        const double val = (1 - fr) * ((1 - fc) * at(ir, ic) + fc * at(ir, ic + 1)) +
                           fr * ((1 - fc) * at(ir + 1, ic) + fc * at(ir + 1, ic + 1));
        y[r * C + c] = static_cast<float>(val);
      }
  }

  void blur_one(const float* x, float* y, image_size sz) const {
    const std::size_t R = sz.rows, C = sz.cols;
    const long long rad = static_cast<long long>(std::ceil(3 * param_));
    std::vector<double> w(static_cast<std::size_t>(2 * rad + 1));
    double total = 0;
    for (long long k = -rad; k <= rad; ++k) total += w[k + rad] = std::exp(-double(k * k) / (2 * param_ * param_));
    for (double& e : w) e /= total;
    // h = x blurred along the columns of each row, then y = h blurred along each column
    std::vector<double> h(R * C, 0.0);
    for (std::size_t r = 0; r < R; ++r)
      for (long long c = 0; c < (long long)C; ++c) {
        double s = 0;
        for (long long k = -rad; k <= rad; ++k)
          if (c + k >= 0 && c + k < (long long)C) s += w[k + rad] * x[r * C + c + k];
        h[r * C + c] = s;
      }
    for (long long r = 0; r < (long long)R; ++r)
      for (std::size_t c = 0; c < C; ++c) {
        double s = 0;
        for (long long k = -rad; k <= rad; ++k)
          if (r + k >= 0 && r + k < (long long)R) s += w[k + rad] * h[(r + k) * C + c];
        y[r * C + c] = static_cast<float>(s);
      }
  }

  void edges_one(const float* x, float* y, image_size sz) const {
    const long long R = (long long)sz.rows, C = (long long)sz.cols;
    auto at = [&](long long r, long long c) -> double { return r < 0 || c < 0 || r >= R || c >= C ? 0.0 : x[r * C + c]; };
    std::vector<double> m(static_cast<std::size_t>(R * C));
    double top = 0;
    for (long long r = 0; r < R; ++r)
      for (long long c = 0; c < C; ++c) {
        // gx = [[-1 0 1] [-2 0 2] [-1 0 1]] (*) x,  gy = its transpose (*) x  (correlation)
        const double gx = (at(r - 1, c + 1) + 2 * at(r, c + 1) + at(r + 1, c + 1)) -
                          (at(r - 1, c - 1) + 2 * at(r, c - 1) + at(r + 1, c - 1));
        const double gy = (at(r + 1, c - 1) + 2 * at(r + 1, c) + at(r + 1, c + 1)) -
                          (at(r - 1, c - 1) + 2 * at(r - 1, c) + at(r - 1, c + 1));
        m[r * C + c] = std::sqrt(gx * gx + gy * gy);
        top = std::max(top, m[r * C + c]);
      }
    for (long long i = 0; i < R * C; ++i) y[i] = top > 0 ? static_cast<float>(m[i] / top) : 0.0f;
  }

  style_kind kind_ = style_kind::identity;
  double param_ = 0;
  std::uint64_t seed_ = 0;
  std::vector<style> parts_;  // interpolate: {a, b}
};

}  // namespace cpdiff::data
