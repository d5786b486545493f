#pragma once
// What a training run reports: a loss history for plots, and a progress line every log_every steps
//   step 200/2000  loss 1.234e-02  lr 1.000e-03  85.3 steps/s  ETA 21s
// where loss is the mean over the steps since the previous line, steps/s counts only time spent
// inside run() (not the pauses between calls), and the ETA is for the planned total.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace cpdiff::train {

struct loss_point {
  std::size_t step;  // steps completed when the loss was recorded (1 for the first step)
  double loss;
};
using loss_history = std::vector<loss_point>;

// "1h02m", "3m07s", "42s"
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[48];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

class progress_meter {
 public:
  using clock = std::chrono::steady_clock;

  // out: where lines go (nullptr: silent); every: steps between lines (0: never); total: planned steps.
  progress_meter(std::ostream* out, std::size_t every, std::size_t total) : out_(out), every_(every), total_(total) {}

  // Start timing (each run() call): time between calls does not count towards steps/s.
  void resume() {
    window_start_ = clock::now();
    window_steps_ = 0;
  }
  void set_total(std::size_t total) { total_ = total; }
  std::ostream* stream() const { return out_; }  // nullptr when silent

  // After each completed step; prints a line when `step` is a multiple of the interval.
  void record(std::size_t step, double loss, double lr) {
    window_loss_ += loss;
    ++window_count_;
    ++window_steps_;
    if (out_ == nullptr || every_ == 0 || step % every_ != 0) return;
    const double secs = std::chrono::duration<double>(clock::now() - window_start_).count();
    const double rate = secs > 0 ? static_cast<double>(window_steps_) / secs : 0.0;
    char buf[160];
    const double mean = window_loss_ / static_cast<double>(window_count_);
    std::snprintf(buf, sizeof buf, "  loss %.4e  lr %.3e  %.1f steps/s", mean, lr, rate);
    *out_ << "step " << step;
    if (total_ > 0) *out_ << '/' << total_;
    *out_ << buf;
    if (total_ > step && rate > 0) *out_ << "  ETA " << format_duration(static_cast<double>(total_ - step) / rate);
    *out_ << '\n' << std::flush;
    window_loss_ = 0;
    window_count_ = 0;
    window_start_ = clock::now();
    window_steps_ = 0;
  }

 private:
  std::ostream* out_;
  std::size_t every_, total_;
  clock::time_point window_start_ = clock::now();
  std::size_t window_steps_ = 0;
  double window_loss_ = 0;
  std::size_t window_count_ = 0;
};

}  // namespace cpdiff::train
