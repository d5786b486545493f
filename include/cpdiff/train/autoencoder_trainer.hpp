#pragma once
// autoencoder_trainer<Model>: trains a parameter autoencoder (models::pdiff_autoencoder or any model with
// the same training interface) to reconstruct a collection of flattened, normalised LoRA vectors.
//
//   models::pdiff_autoencoder<models::pdiff_medium> ae(n, /*seed*/ 1);
//   train::autoencoder_trainer trainer(ae, data /* [M, n] host */, {.steps = 30000, .batch_size = 50,
//                                      .log = &std::cout, .log_every = 1000});
//   trainer.run();                          // or run(k) repeatedly
//   trainer.save_checkpoint("ae.ckpt.safetensors");   ... later: trainer.resume(...); trainer.run();
//
// A step: a batch of rows (a new shuffle each epoch), recon = ae.forward_train(x, g) (the model adds its
// input / latent noise from the trainer's rng), loss = MSE(recon, x) against the clean rows,
// ae.backward_train(dloss), then training_loop's guards, clipping, AdamW and EMA (none by default).
// With options().comm, each rank of a data-parallel job takes its rows of each batch (training_loop).
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/losses.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/train/batching.hpp"
#include "cpdiff/train/training_loop.hpp"

namespace cpdiff::train {

// What the trainer needs from an autoencoder.
template <class M>
concept trainable_autoencoder = requires(M& m, tensor_view<const typename M::value_type,
                                                           memory_space_t<typename M::backend_type>> x, rng& g) {
  { m.forward_train(x, g) } -> std::convertible_to<decltype(x)>;
  m.backward_train(x);
  { m.parameters() } -> std::same_as<parameter_store<typename M::value_type, typename M::backend_type>&>;
};

template <trainable_autoencoder Model>
class autoencoder_trainer {
 public:
  using value_type = typename Model::value_type;
  using backend_type = typename Model::backend_type;
  using T = value_type;
  using B = backend_type;
  static constexpr const char* where = "train::autoencoder_trainer";

  // data [M, n]: one flattened LoRA vector per row (copied; the host view need not outlive the call).
  autoencoder_trainer(Model& ae, tensor_view<const T, host_space> data, const train_options& o = {})
      : ae_(&ae), rows_(checked_rows(ae, data)), n_(data.rank() == 2 ? data.dim(1) : 0),
        data_(data.data(), data.data() + data.size()), mse_(ae.parameters().backend()),
        loop_(where, "autoencoder", ae.parameters(), nullptr, "", o, rows_, /*default_ema_decay=*/0) {
    if constexpr (requires { ae.describe(); }) loop_.set_model_description(ae.describe());
    if (loop_.parallel()) loop_.set_data_fingerprint(fingerprint(data_.data(), data_.size() * sizeof(T)));
  }

  // n more steps; returns their mean loss. Throws numeric_error naming the step on a NaN / Inf loss or
  // gradient (the parameters are then those after the last good step).
  double run(std::size_t n) {
    if constexpr (requires { ae_->set_training(true); }) ae_->set_training(true);
    loop_.progress().resume();
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += step();
    return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  }
  // Up to the planned total (options().steps, or epochs).
  double run() { return run(loop_.total_steps() > loop_.step() ? loop_.total_steps() - loop_.step() : 0); }

  void save_checkpoint(const std::filesystem::path& path) { loop_.save(path); }
  void resume(const std::filesystem::path& path) { loop_.resume(path); }

  // Mean reconstruction MSE over the whole dataset with the current weights, in chunks of the batch
  // size: decode(encode(x)) without noise when the model has them, else forward_train with noise from a
  // fixed stream. The trainer's rng is untouched.
  double evaluate() {
    rng g{loop_.noise().seed ^ 0x5a5a5a5a5a5a5a5aull, 0};
    double sum = 0;
    std::vector<std::size_t> idx;
    for (std::size_t begin = 0; begin < rows_; begin += loop_.batches().batch_size()) {
      const std::size_t end = std::min(rows_, begin + loop_.batches().batch_size());
      idx.resize(end - begin);
      for (std::size_t i = begin; i < end; ++i) idx[i - begin] = i;
      const auto x = load(idx);
      tensor_view<const T, memory_space_t<B>> recon;
      if constexpr (requires { ae_->decode(ae_->encode(x)); }) recon = ae_->decode(ae_->encode(x));
      else recon = ae_->forward_train(x, g);
      sum += mse_.forward(recon, x) * static_cast<double>(end - begin);
    }
    return sum / static_cast<double>(rows_);
  }

  std::size_t step_count() const { return loop_.step(); }
  std::size_t total_steps() const { return loop_.total_steps(); }
  const loss_history& history() const { return loop_.history(); }
  const train_options& options() const { return loop_.options(); }
  optim::adamw<T, B>& optimizer() { return loop_.optimizer(); }
  optim::ema<T, B>* ema() { return loop_.ema(); }  // nullptr without EMA
  const shuffled_batches& batches() const { return loop_.batches(); }
  double current_lr() const { return loop_.current_lr(); }
  const std::optional<optim::reduce_lr_on_plateau>& plateau() const { return loop_.plateau(); }
  Model& model() { return *ae_; }

 private:
  static std::size_t checked_rows(Model& ae, tensor_view<const T, host_space> data) {
    expect_rank(data, 2, where, "data [M, n]");
    expect_nonempty(data, where, "data [M, n]");
    if constexpr (requires { ae.input_size(); })
      expect_dim(data, 1, ae.input_size(), where, "data [M, n] (n = the autoencoder's input size)");
    return data.dim(0);
  }

  tensor_view<const T, memory_space_t<B>> load(std::span<const std::size_t> idx) {
    batch_.resize({idx.size(), n_});
    gather_rows(ae_->parameters().backend(), std::span<const T>(data_), n_, idx, batch_, staging_);
    return batch_.cview();
  }

  double step() {
    const matmul_precision_scope precision(loop_.step_precision());
    const auto x = load(loop_.next_batch());  // [N, n]
    loop_.zero_grad();
    const auto recon = ae_->forward_train(x, loop_.noise());  // [N, n]
    const double loss = loop_.global_loss(mse_.forward(recon, x));  // over all ranks' rows
    loop_.check_loss(loss);
    ae_->backward_train(mse_.backward());  // d recon = 2 (recon - x) / numel
    loop_.finish_step(loss);
    return loss;
  }

  Model* ae_;
  std::size_t rows_, n_;
  std::vector<T> data_;  // [M, n] host copy
  tensor<T, B> batch_;   // [N, n]
  std::vector<T> staging_;
  nn::mse_loss<T, B> mse_;
  training_loop<T, B> loop_;
};

}  // namespace cpdiff::train
