#pragma once
// training_loop<T, B>: the part of a training step that does not depend on the model, shared by
// autoencoder_trainer and diffusion_trainer. A trainer's step is
//   matmul_precision_scope p(loop.step_precision());   // bf16 for the first bf16_fraction of the run
//   idx = loop.next_batch();  gather;  loop.zero_grad();
//   loss = forward + loss;    loop.check_loss(loss);   backward;
//   loop.finish_step(loss);   // gradient guard, clipping, LR, AdamW, EMA, plateau, history, progress,
//                             // checkpoint_every
// The loop owns the optimiser(s), the EMA, the LR state, the batch sampler, the noise rng, the step
// count and the loss history: everything a checkpoint holds besides the model parameters, which it
// reads and writes through the stores. `kind` names the trainer in the checkpoint's metadata.
// Data parallel (options().comm with more than one rank, train/data_parallel.hpp): next_batch() returns this
// rank's rows of the global batch, global_loss() turns the rank's mean loss into the batch's, finish_step()
// all-reduces the gradients first; only rank 0 logs and writes checkpoints. The first batch checks that all
// ranks agree on the run (options, model, data, initial parameters) and throws config_error on each if not.
// `model` is the store the EMA follows; `extra` (may be null) is a jointly trained store (a condition
// encoder) with its own AdamW of the same configuration; clipping uses the norm over both.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cpdiff/backend/matmul_precision.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/optim/adamw.hpp"
#include "cpdiff/optim/clip_grad.hpp"
#include "cpdiff/optim/ema.hpp"
#include "cpdiff/optim/lr_schedule.hpp"
#include "cpdiff/train/batching.hpp"
#include "cpdiff/train/checkpoint.hpp"
#include "cpdiff/train/data_parallel.hpp"
#include "cpdiff/train/numeric_guard.hpp"
#include "cpdiff/train/progress.hpp"
#include "cpdiff/train/train_options.hpp"

namespace cpdiff::train {

inline constexpr const char* checkpoint_format = "cpdiff.train_checkpoint.v1";

template <class T, class B>
class training_loop {
 public:
  training_loop(const char* who, std::string kind, parameter_store<T, B>& model, parameter_store<T, B>* extra,
                std::string extra_name, const train_options& o, std::size_t dataset_size, double default_ema_decay)
      : who_(who), kind_(std::move(kind)), o_(o), model_(&model), extra_(extra), extra_name_(std::move(extra_name)),
        opt_(model, o.adamw),
        batches_(dataset_size, o.batch_size, o.seed, o.drop_last), g_{o.seed, 0},
        progress_(o.comm && !o.comm->is_root() ? nullptr : o.log, o.log_every, 0) {
    validate(o_, who);
    if (parallel()) check_shardable();
    if (extra_) extra_opt_ = std::make_unique<optim::adamw<T, B>>(*extra_, o.adamw);
    const double decay = o.ema_decay.value_or(default_ema_decay);
    if (decay > 0) ema_ = std::make_unique<optim::ema<T, B>>(model, decay, o.ema_warmup);
    if (o_.plateau) o_.plateau->lr = o.adamw.lr;
    CPDIFF_CHECK(total_steps() > 0, config_error, who, "the run has 0 steps (steps / epochs)");
    if (o_.schedule == lr_schedule::cosine)
      CPDIFF_CHECK(total_steps() > o_.warmup_steps, config_error, who, "total steps (", total_steps(),
                   ") must exceed warmup_steps (", o_.warmup_steps, ")");
    progress_.set_total(total_steps());
  }

  // The step: this process's rows of the next batch (all of them in one process).
  std::span<const std::size_t> next_batch() {
    if (parallel() && !synchronised_) synchronise();  // before any state moves: a refused run stays as it was
    const std::span<const std::size_t> batch = batches_.next();
    if (!parallel()) return batch;
    const shard s = shard_of(batch.size(), o_.comm->rank(), o_.comm->size());
    g_.first_sample = s.begin;
    shard_weight_ = static_cast<double>(s.rows()) / static_cast<double>(batch.size());
    return batch.subspan(s.begin, s.rows());
  }
  // The mean loss over the whole batch from this rank's mean over its rows (the same value on every rank,
  // so that a NaN stops every rank at check_loss). One process: `local` itself.
  double global_loss(double local) {
    if (!parallel()) return local;
    double v = local * shard_weight_;
    o_.comm->sum(std::span<double>(&v, 1));
    return v;
  }
  rng& noise() { return g_; }
  void zero_grad() {
    opt_.zero_grad();
    if (extra_opt_) extra_opt_->zero_grad();
  }
  void check_loss(double loss) const { check_loss_finite(who_, step_ + 1, loss, batches_.epoch()); }

  void finish_step(double loss) {
    const std::size_t k = step_ + 1;
    if (parallel()) {
      all_reduce_gradients(*o_.comm, *model_, shard_weight_);
      if (extra_) all_reduce_gradients(*o_.comm, *extra_, shard_weight_);
    }
    check_grads_finite(who_, *model_, k, loss, "model");
    if (extra_) check_grads_finite(who_, *extra_, k, loss, extra_name_.c_str());
    if (o_.clip_grad_norm > 0) clip();
    const double lr = current_lr();
    opt_.set_lr(lr);
    opt_.step();
    if (extra_opt_) {
      extra_opt_->set_lr(lr);
      extra_opt_->step();
    }
    if (ema_) ema_->update();
    if (parallel()) after_parallel_step(k);
    const matmul_precision before = step_precision();
    step_ = k;
    if (std::ostream* out = progress_.stream(); out && before != step_precision())
      *out << "step " << k << ": matrix products " << to_string(before) << " -> " << to_string(step_precision())
              << " (bf16_fraction " << o_.bf16_fraction << ")\n";
    epoch_loss_sum_ += loss;
    ++epoch_loss_count_;
    if (batches_.epoch_finished()) {
      if (o_.plateau) o_.plateau->step(epoch_loss_sum_ / static_cast<double>(epoch_loss_count_));
      epoch_loss_sum_ = 0;
      epoch_loss_count_ = 0;
    }
    if (o_.history_every > 0 && k % o_.history_every == 0) history_.push_back({k, loss});
    progress_.record(k, loss, lr);
    if (o_.checkpoint_every > 0 && k % o_.checkpoint_every == 0) save(o_.checkpoint_path);
  }

  // The rate of the next step: the schedule's, scaled by the plateau's reductions so far.
  double current_lr() const {
    const double base = o_.adamw.lr;
    double lr = o_.schedule == lr_schedule::cosine
                    ? optim::cosine_warmup_lr{base, total_steps(), o_.warmup_steps, o_.min_lr}.lr(step_)
                    : base;
    if (o_.plateau && base > 0) lr *= o_.plateau->lr / base;
    return lr;
  }

  // The matrix-product precision of the next step: bf16 while fewer than bf16_fraction * total steps are done.
  matmul_precision step_precision() const {
    return static_cast<double>(step_) < o_.bf16_fraction * static_cast<double>(total_steps()) ? matmul_precision::bf16
                                                                                               : matmul_precision::fp32;
  }

  // State.
  std::size_t step() const { return step_; }  // steps completed
  std::size_t total_steps() const {
    return o_.epochs > 0 ? o_.epochs * batches_.batches_per_epoch() : o_.steps;
  }
  const train_options& options() const { return o_; }
  const loss_history& history() const { return history_; }
  const shuffled_batches& batches() const { return batches_; }
  optim::adamw<T, B>& optimizer() { return opt_; }
  optim::adamw<T, B>* extra_optimizer() { return extra_opt_.get(); }
  optim::ema<T, B>* ema() { return ema_.get(); }
  const std::optional<optim::reduce_lr_on_plateau>& plateau() const { return o_.plateau; }
  progress_meter& progress() { return progress_; }

  // The model's describe() (configuration and sizes), recorded in checkpoints and checked on resume.
  void set_model_description(std::string d) { model_description_ = std::move(d); }
  // A fingerprint of the trainer's data (data_parallel.hpp's fingerprint()): ranks must agree on it.
  void set_data_fingerprint(std::uint64_t f) { data_fingerprint_ = f; }
  bool parallel() const { return o_.comm != nullptr && o_.comm->size() > 1; }

  // Checkpoints.
  // One safetensors file, written atomically (by rank 0 only; every rank returns once it is in place).
  void save(const std::filesystem::path& path) {
    if (!parallel() || o_.comm->is_root()) {
      checkpoint_writer w;
      w.set_metadata("format", checkpoint_format);
      w.set_metadata("trainer", kind_);
      if (!model_description_.empty()) w.set_metadata("model", model_description_);
      write(w);
      w.save(path);
    }
    if (parallel()) o_.comm->barrier();
  }
  // Everything is checked before anything changes: a rejected file leaves the trainer as it was.
  void resume(const std::filesystem::path& path) {
    checkpoint_reader r(path);
    r.expect_metadata("format", checkpoint_format);
    r.expect_metadata("trainer", kind_);
    if (!model_description_.empty()) r.expect_model(model_description_);
    expect(r);
    r.verify();
    check_values(r);
    read(r);
  }

  void write(checkpoint_writer& w) {
    const B& be = model_->backend();
    w.add(be, store_tensors(*model_, "model/"));
    write_optimizer(w, opt_, "optimizer/");
    if (ema_) {
      auto s = ema_->state();
      w.add(be, with_prefix(s.buffers, "ema/"));
      w.add_u64("ema/num_updates", s.step);
    }
    if (extra_) {
      w.add(be, store_tensors(*extra_, extra_name_ + "/"));
      write_optimizer(w, *extra_opt_, extra_name_ + "_optimizer/");
    }
    w.add_u64("trainer/step", step_);
    w.add_u64("trainer/epoch", batches_.epoch());
    w.add_u64("trainer/position", batches_.position());
    w.add_u64("trainer/dataset_size", batches_.dataset_size());
    w.add_f64("trainer/epoch_loss_sum", epoch_loss_sum_);
    w.add_u64("trainer/epoch_loss_count", epoch_loss_count_);
    w.add_u64("rng/seed", g_.seed);
    w.add_u64("rng/next_stream", g_.next_stream);
    if (o_.plateau) {
      const auto& p = *o_.plateau;
      w.add_f64("plateau/lr", p.lr);
      w.add_f64("plateau/best", p.best);
      w.add_u64("plateau/num_bad_epochs", p.num_bad_epochs);
      w.add_u64("plateau/cooldown_counter", p.cooldown_counter);
      w.add_u64("plateau/last_epoch", p.last_epoch);
    }
    std::vector<std::uint64_t> hs;
    std::vector<double> hl;
    for (const auto& h : history_) {
      hs.push_back(h.step);
      hl.push_back(h.loss);
    }
    w.add_u64s("history/step", hs);
    w.add_f64s("history/loss", hl);
    w.set_metadata("step", std::to_string(step_));
  }

  // Lists the names / dtypes / shapes of everything read() will read, for r.verify().
  void expect(checkpoint_reader& r) {
    r.expect(store_tensors(*model_, "model/"));
    expect_optimizer(r, opt_, "optimizer/");
    if (ema_) {
      r.expect(with_prefix(ema_->state().buffers, "ema/"));
      r.expect_u64("ema/num_updates");
    }
    if (extra_) {
      r.expect(store_tensors(*extra_, extra_name_ + "/"));
      expect_optimizer(r, *extra_opt_, extra_name_ + "_optimizer/");
    }
    for (const char* n : {"trainer/step", "trainer/epoch", "trainer/position", "trainer/dataset_size",
                          "trainer/epoch_loss_count", "rng/seed", "rng/next_stream"})
      r.expect_u64(n);
    r.expect_f64("trainer/epoch_loss_sum");
    if (o_.plateau) {
      r.expect_f64("plateau/lr");
      r.expect_f64("plateau/best");
      for (const char* n : {"plateau/num_bad_epochs", "plateau/cooldown_counter", "plateau/last_epoch"})
        r.expect_u64(n);
    }
    r.expect_u64s("history/step");
    r.expect_f64s("history/loss");
  }

  // After verify(): the values must fit this trainer and be ones a run can have reached.
  void check_values(const checkpoint_reader& r) const {
    const std::uint64_t m = r.u64("trainer/dataset_size");
    CPDIFF_CHECK(m == batches_.dataset_size(), config_error, who_, "the checkpoint was trained on ", m,
                 " samples, this trainer has ", batches_.dataset_size(), " (the epoch permutations would differ)");
    const std::uint64_t pos = r.u64("trainer/position");
    check_value(r, pos <= m, "trainer/position", "is ", pos, ", more than its dataset size ", m);
    check_counters(r);
    check_history(r);
    check_scalar(r, "trainer/epoch_loss_sum", false);
    if (o_.plateau) {
      check_scalar(r, "plateau/lr", true);
      // the plateau only lowers the rate it starts from (adamw.lr), down to min_lr
      const double lr = r.f64("plateau/lr"), top = std::max(o_.adamw.lr, o_.plateau->min_lr);
      check_value(r, lr <= top, "plateau/lr", "is ", lr, ", above the learning rate ", top,
                  " the plateau schedule starts from (resume with the options of the run that wrote it)");
      check_value(r, !std::isnan(r.f64("plateau/best")), "plateau/best", "is NaN");
    }
  }

  // Call after verify() and check_values(): copies everything in.
  void read(checkpoint_reader& r) {
    const B& be = model_->backend();
    r.read(be, store_tensors(*model_, "model/"));
    read_optimizer(r, opt_, "optimizer/");
    if (ema_) {
      auto s = ema_->state();
      r.read(be, with_prefix(s.buffers, "ema/"));
      s.step = r.u64("ema/num_updates");
    }
    if (extra_) {
      r.read(be, store_tensors(*extra_, extra_name_ + "/"));
      read_optimizer(r, *extra_opt_, extra_name_ + "_optimizer/");
    }
    step_ = r.u64("trainer/step");
    g_ = {r.u64("rng/seed"), r.u64("rng/next_stream")};
    batches_ = shuffled_batches(batches_.dataset_size(), o_.batch_size, g_.seed, o_.drop_last);
    batches_.restore(r.u64("trainer/epoch"), r.u64("trainer/position"));
    epoch_loss_sum_ = r.f64("trainer/epoch_loss_sum");
    epoch_loss_count_ = r.u64("trainer/epoch_loss_count");
    if (o_.plateau) {
      auto& p = *o_.plateau;
      p.lr = r.f64("plateau/lr");
      p.best = r.f64("plateau/best");
      p.num_bad_epochs = r.u64("plateau/num_bad_epochs");
      p.cooldown_counter = r.u64("plateau/cooldown_counter");
      p.last_epoch = r.u64("plateau/last_epoch");
    }
    const auto hs = r.u64s("history/step");
    const auto hl = r.f64s("history/loss");
    history_.clear();
    for (std::size_t i = 0; i < hs.size(); ++i) history_.push_back({static_cast<std::size_t>(hs[i]), hl[i]});
  }

 private:
  // Runs longer than 2^53 steps do not exist (and their counts would not be exact as doubles).
  static constexpr std::uint64_t max_step = std::uint64_t{1} << 53;

  template <class... A>
  void check_value(const checkpoint_reader& r, bool ok, const std::string& name, A&&... what) const {
    if (!ok) throw_error<io_error>(who_, "'", r.source(), "': tensor '", name, "' ", std::forward<A>(what)...);
  }
  void check_scalar(const checkpoint_reader& r, const std::string& name, bool non_negative) const {
    const double v = r.f64(name);
    check_value(r, std::isfinite(v) && !(non_negative && v < 0), name, "is ", v, ", expected a finite value",
                non_negative ? " >= 0" : "");
  }
  // Counters: the step below max_step; the optimisers, the EMA, the epochs and the epoch's losses at most
  // one count per step.
  void check_counters(const checkpoint_reader& r) const {
    const std::uint64_t step = r.u64("trainer/step");
    check_value(r, step < max_step, "trainer/step", "is ", step, ", not a step count of a real run");
    std::vector<std::string> at_most_step = {"optimizer/step", "trainer/epoch", "trainer/epoch_loss_count"};
    if (ema_) at_most_step.push_back("ema/num_updates");
    if (extra_) at_most_step.push_back(extra_name_ + "_optimizer/step");
    for (const auto& n : at_most_step)
      check_value(r, r.u64(n) <= step, n, "is ", r.u64(n), ", more than trainer/step ", step);
  }
  // The loss history: as long as its steps, steps strictly increasing up to trainer/step, finite losses.
  void check_history(const checkpoint_reader& r) const {
    const auto hs = r.u64s("history/step");
    const auto hl = r.f64s("history/loss");
    check_value(r, hs.size() == hl.size(), "history/loss", "holds ", hl.size(), " values, history/step ", hs.size());
    const std::uint64_t step = r.u64("trainer/step");
    for (std::size_t i = 0; i < hs.size(); ++i) {
      check_value(r, hs[i] > (i ? hs[i - 1] : 0) && hs[i] <= step, "history/step", "element ", i, " is ", hs[i],
                  ", expected steps increasing from 1 up to trainer/step ", step);
      check_value(r, std::isfinite(hl[i]), "history/loss", "element ", i, " is ", hl[i], ", expected a finite loss");
    }
  }

  // Every batch must give each rank at least one row.
  void check_shardable() const {
    const std::size_t k = o_.comm->size(), m = batches_.dataset_size(), b = batches_.batch_size();
    CPDIFF_CHECK(b >= k, config_error, who_, "batch of ", b, " rows (dataset ", m, ") for ", k,
                 " ranks: each rank needs at least one row; use a batch of at least ", k);
    const std::size_t last = m % b;
    CPDIFF_CHECK(o_.drop_last || last == 0 || last >= k, config_error, who_, "each epoch's last batch has ", last,
                 " rows (", m, " samples, batch ", b, "), fewer than the ", k,
                 " ranks: set drop_last or a batch size that leaves at least ", k);
  }
  // First batch of a data-parallel run: the ranks must agree on everything that defines the run.
  void synchronise() {
    communicator& c = *o_.comm;
    const auto num = [](auto v) { return static_cast<std::uint64_t>(v); };
    expect_same_on_all_ranks(c, who_, "the trainer and model (" + kind_ + ")",
                             fingerprint(model_description_, fingerprint(kind_)));
    expect_same_on_all_ranks(c, who_, "the dataset size", num(batches_.dataset_size()));
    expect_same_on_all_ranks(c, who_, "the data", data_fingerprint_);
    expect_same_on_all_ranks(c, who_, "the batch size", num(batches_.batch_size()));
    expect_same_on_all_ranks(c, who_, "the seed", num(o_.seed));
    expect_same_on_all_ranks(c, who_, "the total steps", num(total_steps()));
    expect_same_on_all_ranks(c, who_, "the step reached (a resumed checkpoint)", num(step_));
    expect_same_on_all_ranks(c, who_, "the parameter count", num(model_->size() + (extra_ ? extra_->size() : 0)));
    expect_same_on_all_ranks(c, who_, "the parameter values", params_fingerprint());
    synchronised_ = true;
  }
  std::uint64_t params_fingerprint() const {
    const std::uint64_t a = values_fingerprint(*model_);
    return extra_ ? fingerprint(&a, sizeof a, values_fingerprint(*extra_)) : a;
  }
  void after_parallel_step([[maybe_unused]] std::size_t k) {
    average_buffers(*o_.comm, *model_, buffer_scratch_);
    if (extra_) average_buffers(*o_.comm, *extra_, buffer_scratch_);
#ifndef NDEBUG
    // Debug builds: every rank holds the same parameters after every step.
    expect_same_on_all_ranks(*o_.comm, who_, "the parameters after step " + std::to_string(k), params_fingerprint());
#endif
  }

  // Global L2 norm over the model's and the extra store's trainable gradients (torch's clip_grad_norm_).
  void clip() {
    const T max_norm = static_cast<T>(o_.clip_grad_norm);
    if (!extra_) {
      optim::clip_grad_norm(*model_, max_norm);
      return;
    }
    const double a = optim::grad_norm(*model_), b = optim::grad_norm(*extra_);
    const T norm = static_cast<T>(std::sqrt(a * a + b * b));
    const T coef = max_norm / (norm + T(1e-6));
    if (coef >= T(1)) return;
    for (parameter_store<T, B>* ps : {model_, extra_}) {
      const auto g = ps->grads();
      optim::for_each_trainable_range(*ps, [&](std::size_t offset, std::size_t length) {
        scale(ps->backend(), g.range(offset, length), coef);
      });
    }
  }
  void write_optimizer(checkpoint_writer& w, optim::adamw<T, B>& opt, const std::string& prefix) {
    auto s = opt.state();
    w.add(model_->backend(), with_prefix(s.buffers, prefix));
    w.add_u64(prefix + "step", s.step);
  }
  void expect_optimizer(checkpoint_reader& r, optim::adamw<T, B>& opt, const std::string& prefix) {
    r.expect(with_prefix(opt.state().buffers, prefix));
    r.expect_u64(prefix + "step");
  }
  void read_optimizer(checkpoint_reader& r, optim::adamw<T, B>& opt, const std::string& prefix) {
    auto s = opt.state();
    r.read(model_->backend(), with_prefix(s.buffers, prefix));
    s.step = r.u64(prefix + "step");
  }

  const char* who_;
  std::string kind_;
  std::string model_description_;
  train_options o_;
  parameter_store<T, B>* model_;
  parameter_store<T, B>* extra_;
  std::string extra_name_;
  optim::adamw<T, B> opt_;
  std::unique_ptr<optim::adamw<T, B>> extra_opt_;
  std::unique_ptr<optim::ema<T, B>> ema_;
  shuffled_batches batches_;
  rng g_;
  progress_meter progress_;
  loss_history history_;
  std::size_t step_ = 0;
  bool synchronised_ = false;
  double shard_weight_ = 1;  // this rank's rows / the batch's rows
  tensor<T, B> buffer_scratch_;  // average_buffers' packed buffer, reused every step
  std::uint64_t data_fingerprint_ = 0;
  double epoch_loss_sum_ = 0;
  std::size_t epoch_loss_count_ = 0;
};

}  // namespace cpdiff::train
