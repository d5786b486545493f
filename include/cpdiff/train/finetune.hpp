#pragma once
// The training loops of the LoRA experiments, as library functions (SPEC.md step 1, "Collect"), for any
// train::lora_classifier: models::lora_mlp, or models::peft_classifier over a base such as models::vit:
//   models::lora_mlp<4, std::ratio<16>> model(seed);
//   train::pretrain_base(model, clean_train, clean_test, {.epochs = 3});          // base trainable, LoRA off
//   train::finetune_config cfg{.epochs = 10, .collect_last = 64};
//   cfg.on_checkpoint = collection.appender(collection.add_condition(t.name));
//   train::train_result r = train::finetune_lora(model, task_train, task_test, cfg);   // base frozen
// Both run mini-batch AdamW with cross-entropy: batches shuffled each epoch by a Philox permutation,
// rate = linear warm-up over ceil(warmup_ratio * total) steps then cosine to 0 (optim::cosine_warmup_lr).
// finetune_lora starts from a fresh PEFT-initialised LoRA (reset_lora) unless told otherwise, uses LoRA
// dropout, and after each of the last `collect_last` optimiser steps hands the LoRA (model.adapter()) to
// on_checkpoint. A NaN / Inf loss or gradient throws numeric_error naming the step. A progress line goes to `log`
// every log_every steps and at each epoch end (nullptr: silent):
//   finetune epoch 2/10 step 150/400 loss 0.4321 acc 0.8125 lr 8.10e-04 312.4 steps/s
// Everything random is derived from the config's seed (LoRA init, shuffling, dropout masks), so a run
// is a function of the base, the data and the config.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <limits>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/io/lora_adapter.hpp"
#include "cpdiff/data/tasks.hpp"
#include "cpdiff/models/lora_mode.hpp"
#include "cpdiff/nn/losses.hpp"
#include "cpdiff/optim/adamw.hpp"
#include "cpdiff/optim/lr_schedule.hpp"

namespace cpdiff::train {

// What the loops need from a classifier (models::lora_mlp is one).
template <class M>
concept lora_classifier = requires(M& m, const M& cm, std::uint64_t s, double p, bool b,
                                   tensor_view<const typename M::value_type, memory_space_t<typename M::backend_type>> x,
                                   std::span<const float> img, std::span<const std::int64_t> lab) {
  m.parameters();
  m.set_mode(models::lora_mode::pretrain);
  m.reset_lora(s);
  m.reseed_dropout(s);
  m.set_lora_dropout(p);
  m.set_training(b);
  m.forward(x);
  m.backward(x);
  { cm.adapter() } -> std::convertible_to<lora::adapter>;
  { m.accuracy(img, lab) } -> std::convertible_to<double>;
  { M::inputs } -> std::convertible_to<std::size_t>;
  { M::classes } -> std::convertible_to<std::size_t>;
};

struct pretrain_config {
  std::size_t epochs = 3;
  std::size_t batch_size = 128;
  double lr = 1e-3;
  double weight_decay = 1e-2;  // AdamW's default
  double warmup_ratio = 0.0;
  std::uint64_t seed = 0;        // shuffling
  bool evaluate_each_epoch = false;
  std::size_t log_every = 100;  // steps between progress lines (0: epoch ends only)
  std::ostream* log = nullptr;
};

struct finetune_config {
  std::size_t epochs = 10;
  std::size_t batch_size = 128;
  double lr = 1e-3;
  double weight_decay = 0.1;  // the paper's
  double warmup_ratio = 0.1;  // the paper's
  double lora_dropout = 0.1;  // the paper's
  std::uint64_t seed = 0;     // LoRA init, shuffling, dropout
  bool reset_lora = true;     // start from a fresh LoRA (A from the seed, B = 0)
  std::size_t collect_last = 0;  // K: call on_checkpoint after each of the last K steps
  std::function<void(std::size_t step, const lora::adapter&)> on_checkpoint{};  // step counts from 1
  bool evaluate_each_epoch = false;
  std::size_t log_every = 100;
  std::ostream* log = nullptr;
};

struct train_result {
  std::size_t steps = 0;
  double final_loss = 0;          // mean training loss over the last epoch
  double train_accuracy = 0;      // over the last epoch's batches (dropout on)
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();  // at the end; NaN without a test split
  std::vector<double> epoch_test_accuracy;  // with evaluate_each_epoch
  std::size_t checkpoints = 0;    // on_checkpoint calls
  double seconds = 0;
};

namespace finetune_detail {

// A 64-bit key for one purpose of a run (init, shuffle, dropout), so the purposes draw independent streams.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t purpose) {
  const philox_block b = philox4x32(seed, purpose, 0x6370646966664c6fULL);
  return (std::uint64_t(b.v[0]) << 32) | b.v[1];
}

// A uniformly shuffled 0..n-1 (Fisher-Yates; j = floor(u32 * (i + 1) / 2^32) from Philox (seed, stream)).
inline std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed, std::uint64_t stream) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  for (std::size_t i = n; i-- > 1;) {
    const std::uint32_t u = philox4x32(seed, i, stream).v[0];
    const std::size_t j = static_cast<std::size_t>((std::uint64_t(u) * (i + 1)) >> 32);
    std::swap(idx[i], idx[j]);
  }
  return idx;
}

struct loop_settings {
  const char* what;  // "pretrain" / "finetune": progress lines and error messages
  std::size_t epochs, batch_size;
  optim::adamw_config opt;
  double warmup_ratio;
  std::uint64_t shuffle_seed;
  bool evaluate_each_epoch;
  std::size_t log_every;
  std::ostream* log;
};

inline std::size_t total_steps(std::size_t n, const loop_settings& s) {
  return s.epochs * ((n + s.batch_size - 1) / s.batch_size);
}

template <class M>
void check_data(const data::labelled_images& d, const char* where, const char* which) {
  CPDIFF_CHECK(d.images.size() == d.labels.size() * M::inputs, shape_error, where, which, " split: ", d.images.size(),
               " pixel values for ", d.labels.size(), " labels (expected ", M::inputs, " per image)");
  for (std::size_t i = 0; i < d.labels.size(); ++i)
    CPDIFF_CHECK(d.labels[i] >= 0 && std::size_t(d.labels[i]) < M::classes, shape_error, where, which, " split: label[",
                 i, "] = ", d.labels[i], " is not in [0, ", M::classes, ")");
}

// The loop both entry points share. on_step(step) runs after each optimiser step (step from 1).
template <class M, class OnStep>
train_result train_loop(M& m, const data::labelled_images& train, const data::labelled_images& test, const loop_settings& s,
                        OnStep&& on_step) {
  using T = typename M::value_type;
  using B = typename M::backend_type;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const std::size_t n = train.size(), total = total_steps(n, s);
  const std::size_t warmup =
      std::min<std::size_t>(static_cast<std::size_t>(std::ceil(s.warmup_ratio * double(total))), total - 1);
  const optim::cosine_warmup_lr sched{.base_lr = s.opt.lr, .total_steps = total, .warmup_steps = warmup};
  auto& ps = m.parameters();
  const B be = ps.backend();
  optim::adamw<T, B> opt(ps, s.opt);
  nn::cross_entropy<T, B, std::int64_t> ce(be);
  tensor<T, B> x;
  tensor<std::int64_t, B> y;
  std::vector<T> xh;
  std::vector<std::int64_t> yh;
  train_result r;
  std::size_t step = 0;
  opt.zero_grad();
  m.set_training(true);
  for (std::size_t e = 0; e < s.epochs; ++e) {
    const std::vector<std::size_t> order = shuffled_indices(n, s.shuffle_seed, e);
    double epoch_loss = 0, line_loss = 0;
    std::size_t epoch_correct = 0, line_correct = 0, line_seen = 0, line_steps = 0;
    double line_t = elapsed();
    for (std::size_t b = 0; b < n; b += s.batch_size) {
      const std::size_t bs = std::min(s.batch_size, n - b);
      // x [bs, 784], y [bs]: the batch's examples in shuffled order
      xh.resize(bs * M::inputs);
      yh.resize(bs);
      for (std::size_t i = 0; i < bs; ++i) {
        const std::size_t k = order[b + i];
        std::copy(train.images.begin() + std::ptrdiff_t(k * M::inputs),
                  train.images.begin() + std::ptrdiff_t((k + 1) * M::inputs), xh.begin() + std::ptrdiff_t(i * M::inputs));
        yh[i] = train.labels[k];
      }
      x.resize({bs, M::inputs});
      y.resize({bs});
      from_host(be, std::span<const T>(xh), x.view());
      from_host(be, std::span<const std::int64_t>(yh), y.view());

      opt.set_lr(sched.lr(step));
      const double loss = ce.forward(m.forward(x.cview()), y.cview());
      CPDIFF_CHECK(std::isfinite(loss), numeric_error, s.what, "loss is ", loss, " at step ", step + 1, " of ",
                   total, " (epoch ", e + 1, ", lr ", opt.lr(), "): training diverged; lower the learning rate");
      m.backward(ce.backward());
      // The loss alone misses a NaN that a ReLU turns into 0 (cpdiff's relu maps NaN to 0): check the gradients.
      CPDIFF_CHECK(all_finite(be, tensor_view<const T, memory_space_t<B>>(ps.grads())), numeric_error, s.what,
                   "non-finite gradient at step ", step + 1, " of ", total, " (epoch ", e + 1, ", loss ", loss,
                   "): check the inputs for NaN / Inf");
      opt.step();
      opt.zero_grad();
      ++step;

      const std::vector<T> prob = to_host(be, ce.probabilities());
      std::size_t correct = 0;
      for (std::size_t i = 0; i < bs; ++i) {
        const T* row = prob.data() + i * M::classes;
        correct += std::max_element(row, row + M::classes) - row == yh[i] ? 1 : 0;
      }
      epoch_loss += loss * double(bs);
      epoch_correct += correct;
      line_loss += loss * double(bs);
      line_correct += correct;
      line_seen += bs;
      ++line_steps;
      on_step(step);

      const bool epoch_end = b + bs >= n;
      if (s.log && (epoch_end || (s.log_every > 0 && step % s.log_every == 0))) {
        const double now = elapsed(), dt = now - line_t;
        std::ostringstream line;  // formatted apart, so the caller's stream keeps its own precision
        line << s.what << " epoch " << e + 1 << '/' << s.epochs << " step " << step << '/' << total << std::fixed
             << std::setprecision(4) << " loss " << line_loss / double(line_seen) << " acc "
             << double(line_correct) / double(line_seen) << std::scientific << std::setprecision(2) << " lr "
             << opt.lr() << std::fixed << std::setprecision(1) << ' ' << (dt > 0 ? double(line_steps) / dt : 0.0)
             << " steps/s\n";
        *s.log << line.str();
        line_loss = 0;
        line_correct = line_seen = line_steps = 0;
        line_t = now;
      }
    }
    r.final_loss = epoch_loss / double(n);
    r.train_accuracy = double(epoch_correct) / double(n);
    if (s.evaluate_each_epoch && !test.empty()) {
      r.epoch_test_accuracy.push_back(m.accuracy(test.images, test.labels));
      if (s.log) {
        std::ostringstream line;
        line << s.what << " epoch " << e + 1 << '/' << s.epochs << " test acc " << std::fixed << std::setprecision(4)
             << r.epoch_test_accuracy.back() << '\n';
        *s.log << line.str();
      }
    }
  }
  m.set_training(false);
  r.steps = step;
  if (!test.empty())
    r.test_accuracy = r.epoch_test_accuracy.empty() ? m.accuracy(test.images, test.labels) : r.epoch_test_accuracy.back();
  r.seconds = elapsed();
  return r;
}

inline void check_loop(const loop_settings& s, std::size_t n, const char* where) {
  CPDIFF_CHECK(s.epochs > 0 && s.batch_size > 0, config_error, where, "epochs (", s.epochs, ") and batch_size (",
               s.batch_size, ") must be positive");
  CPDIFF_CHECK(n > 0, config_error, where, "the training split is empty");
  CPDIFF_CHECK(s.warmup_ratio >= 0 && s.warmup_ratio < 1, config_error, where, "warmup_ratio must be in [0, 1), got ",
               s.warmup_ratio);
  optim::validate(s.opt);
}

// The loop settings of a pretrain_config or finetune_config, after checking the data and the settings.
template <class M, class Config>
loop_settings checked_settings(const data::labelled_images& train, const data::labelled_images& test, const Config& c,
                               const char* what, const char* where) {
  check_data<M>(train, where, "training");
  check_data<M>(test, where, "test");
  const loop_settings s{what,          c.epochs,   c.batch_size, {.lr = c.lr, .weight_decay = c.weight_decay},
                        c.warmup_ratio, derive_seed(c.seed, 2), c.evaluate_each_epoch, c.log_every, c.log};
  check_loop(s, train.size(), where);
  return s;
}

}  // namespace finetune_detail

// Trains the base (weights and biases of every layer) on `train`, the LoRA path off (B = 0); evaluates on
// `test` (may be empty). Leaves the model in finetune mode (base frozen) with a fresh LoRA.
template <lora_classifier M>
train_result pretrain_base(M& m, const data::labelled_images& train, const data::labelled_images& test,
                           const pretrain_config& c = {}) {
  constexpr const char* where = "train::pretrain_base";
  const finetune_detail::loop_settings s = finetune_detail::checked_settings<M>(train, test, c, "pretrain", where);
  m.reset_lora(finetune_detail::derive_seed(c.seed, 1));
  m.set_mode(models::lora_mode::pretrain);
  train_result r;
  try {
    r = finetune_detail::train_loop(m, train, test, s, [](std::size_t) {});
  } catch (...) {
    m.set_mode(models::lora_mode::finetune);
    throw;
  }
  m.set_mode(models::lora_mode::finetune);
  return r;
}

// LoRA fine-tuning of a frozen base on one task; see the top of this file.
template <lora_classifier M>
train_result finetune_lora(M& m, const data::labelled_images& train, const data::labelled_images& test,
                           const finetune_config& c = {}) {
  constexpr const char* where = "train::finetune_lora";
  const finetune_detail::loop_settings s = finetune_detail::checked_settings<M>(train, test, c, "finetune", where);
  const std::size_t total = finetune_detail::total_steps(train.size(), s);
  CPDIFF_CHECK(c.collect_last <= total, config_error, where, "collect_last (", c.collect_last,
               ") exceeds the run's ", total, " optimiser steps (", c.epochs, " epochs of ", train.size(),
               " examples in batches of ", c.batch_size, ")");
  CPDIFF_CHECK(c.collect_last == 0 || c.on_checkpoint, config_error, where, "collect_last is ", c.collect_last,
               " but on_checkpoint is not set");
  if (c.reset_lora) m.reset_lora(finetune_detail::derive_seed(c.seed, 1));
  m.set_mode(models::lora_mode::finetune);
  m.set_lora_dropout(c.lora_dropout);
  m.reseed_dropout(finetune_detail::derive_seed(c.seed, 3));
  std::size_t calls = 0;
  train_result r = finetune_detail::train_loop(m, train, test, s, [&](std::size_t step) {
    if (step + c.collect_last > total) {  // one of the last K steps
      c.on_checkpoint(step, m.adapter());
      ++calls;
    }
  });
  r.checkpoints = calls;
  return r;
}

}  // namespace cpdiff::train
