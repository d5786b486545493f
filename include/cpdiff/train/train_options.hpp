#pragma once
// The options both trainers share (autoencoder_trainer, diffusion_trainer). Designated initialisers:
//   train::train_options o{.steps = 30000, .batch_size = 200, .schedule = train::lr_schedule::cosine,
//                          .warmup_steps = 500, .log = &std::cout, .log_every = 500};
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>

#include "cpdiff/core/error.hpp"
#include "cpdiff/optim/adamw.hpp"
#include "cpdiff/optim/lr_schedule.hpp"
#include "cpdiff/train/communicator.hpp"

namespace cpdiff::train {

enum class lr_schedule {
  constant,  // adamw.lr at every step
  cosine,    // linear warm-up over warmup_steps, then cosine down to min_lr at `steps` (optim::cosine_warmup_lr)
};

struct train_options {
  // length
  std::size_t steps = 1000;  // planned total: run()'s target, the cosine's length, the ETA
  std::size_t epochs = 0;    // > 0: the total is epochs * batches per epoch instead of `steps`
  std::size_t batch_size = 64;
  bool drop_last = false;    // skip each epoch's last, short batch
  // optimisation
  optim::adamw_config adamw{};  // lr 1e-3, weight decay 1e-2, PyTorch's betas / eps
  lr_schedule schedule = lr_schedule::constant;
  std::size_t warmup_steps = 0;  // cosine only
  double min_lr = 0;             // cosine only
  // ReduceLROnPlateau on each epoch's mean training loss; its rate scales the schedule's (its `lr` field
  // is set to adamw.lr at the start).
  std::optional<optim::reduce_lr_on_plateau> plateau{};
  double clip_grad_norm = 0;          // > 0: clip the global gradient L2 norm to this
  std::optional<double> ema_decay{};  // unset: the trainer's default (autoencoder: none; diffusion: p-diff's
                                      // 0.9999); 0: no EMA
  // decay min(d, (1 + n) / (10 + n)) for update n (diffusers' warm-up). On by default: without it a
  // 0.9999 average after 3,000 steps still holds 0.9999^3000 = 74% of the initial random weights, and a
  // short run samples from noise (seen: conditions indistinguishable). Off reproduces p-diff exactly.
  bool ema_warmup = true;
  // mixed precision: the first bf16_fraction of the run's steps run their float matrix products in
  // matmul_precision::bf16 (the paper: 0.75 for the diffusion model), the rest in fp32. A GPU-only speed-up:
  // the cpu backend computes fp32 either way (backend/matmul_precision.hpp).
  double bf16_fraction = 0;
  // randomness: the batches' shuffles and the training noise, a pure function of the seed
  std::uint64_t seed = 0;
  // reporting
  std::ostream* log = nullptr;     // progress lines (nullptr: silent)
  std::size_t log_every = 100;     // steps between progress lines (0: none)
  std::size_t history_every = 1;   // steps between loss-history points (0: none)
  // checkpoints
  std::size_t checkpoint_every = 0;  // > 0: save_checkpoint(checkpoint_path) after every such step
  std::filesystem::path checkpoint_path{};
  // data parallelism (train/data_parallel.hpp): the ranks of one job share each batch; nullptr: one process.
  // Only rank 0 logs and writes checkpoints.
  communicator* comm = nullptr;
};

inline void validate(const train_options& o, const char* where) {
  optim::validate(o.adamw);
  CPDIFF_CHECK(o.batch_size > 0, config_error, where, "batch_size must be positive");
  CPDIFF_CHECK(o.clip_grad_norm >= 0, config_error, where, "clip_grad_norm must be >= 0 (0: off), got ",
               o.clip_grad_norm);
  CPDIFF_CHECK(!o.ema_decay || (*o.ema_decay >= 0 && *o.ema_decay < 1), config_error, where,
               "ema_decay must be in [0, 1) (0: no EMA), got ", o.ema_decay.value_or(0));
  CPDIFF_CHECK(o.schedule == lr_schedule::cosine || o.warmup_steps == 0, config_error, where,
               "warmup_steps needs schedule = lr_schedule::cosine");
  CPDIFF_CHECK(o.bf16_fraction >= 0 && o.bf16_fraction <= 1, config_error, where,
               "bf16_fraction must be in [0, 1] (0: fp32 throughout), got ", o.bf16_fraction);
  CPDIFF_CHECK(o.checkpoint_every == 0 || !o.checkpoint_path.empty(), config_error, where,
               "checkpoint_every = ", o.checkpoint_every, " needs a checkpoint_path");
  if (o.plateau) o.plateau->validate();
}

}  // namespace cpdiff::train
