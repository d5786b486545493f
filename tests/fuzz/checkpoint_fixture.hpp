#pragma once
// The trainer state that fuzz_checkpoint.cpp resumes into and make_seeds.cpp saves from: a train::training_loop
// over a small model store (trainable and frozen entries) and a jointly trained "encoder" store, with every
// optional piece of checkpoint state switched on (EMA, ReduceLROnPlateau, cosine schedule, loss history).
// Both sides must build it identically, or the seeds would not resume.
#include <cstddef>
#include <memory>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/train/training_loop.hpp"

namespace cpdiff_fuzz {

struct checkpoint_fixture {
  using loop_type = cpdiff::train::training_loop<float, cpdiff::cpu>;
  static constexpr std::size_t dataset_size = 8;

  cpdiff::parameter_store<float, cpdiff::cpu> model, encoder;
  std::unique_ptr<loop_type> loop;

  checkpoint_fixture() {
    model.add("fc1.weight", {3, 2});
    model.add("fc1.bias", {3});
    model.add("norm.running_var", {3}, false);
    encoder.add("embed.weight", {4, 2});
    cpdiff::train::train_options o;
    o.steps = 40;
    o.batch_size = 3;
    o.schedule = cpdiff::train::lr_schedule::cosine;
    o.warmup_steps = 4;
    o.plateau = cpdiff::optim::reduce_lr_on_plateau{.patience = 1};
    o.ema_decay = 0.9;
    o.seed = 11;
    loop = std::make_unique<loop_type>("fuzz_checkpoint", "fuzz_trainer", model, &encoder, "encoder", o,
                                       dataset_size, 0.0);
    loop->set_model_description("fuzz model: fc1 3x2, encoder 4x2");
  }
};

}  // namespace cpdiff_fuzz
