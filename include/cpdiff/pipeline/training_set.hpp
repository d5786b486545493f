#pragma once
// The training set of stages 4-5 (SPEC.md step 3): a collection's checkpoints z-scored, with the statistics of
// their own condition (the paper's) or of all conditions pooled, and beside each the row its condition encoder
// reads. pipeline::lora_generator and the Fashion-MNIST example build their matrices here.
//   const auto set = pipeline::make_training_set(coll, pipeline::normalisation::pooled);
//   sys.train_autoencoder(set.vectors_view(), ...);    // [M, n]
//   sys.train_diffusion(set.conditions_view(), ...);   // [M, D]
#include <cstddef>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::pipeline {

enum class normalisation { per_condition, pooled };

// The statistics condition c's checkpoints are z-scored with: its own, or those of all conditions together
// (then the generated vector itself must say which condition it is for; README "Quick start").
inline const data::zscore_stats& normalisation_statistics(const data::lora_collection& coll, normalisation how,
                                                          std::size_t c) {
  return how == normalisation::pooled ? coll.pooled_statistics() : coll.statistics(c);
}

struct training_set {
  std::vector<float> vectors;     // [M, n]: every checkpoint, z-scored, condition by condition
  std::vector<float> conditions;  // [M, D]: the condition row of each
  std::size_t count = 0, n = 0, d = 0;

  tensor_view<const float, host_space> vectors_view() const { return const_view<float>(vectors.data(), {count, n}); }
  tensor_view<const float, host_space> conditions_view() const {
    return const_view<float>(conditions.data(), {count, d});
  }
};

inline training_set make_training_set(const data::lora_collection& coll, normalisation how) {
  CPDIFF_CHECK(coll.total_checkpoints() > 0, config_error, "pipeline::make_training_set",
               "the collection holds no checkpoints (append each condition's before training)");
  training_set s;
  s.count = coll.total_checkpoints();
  s.n = coll.dim();
  s.d = coll.feature_dim();
  s.vectors.reserve(s.count * s.n);
  s.conditions.reserve(s.count * s.d);
  for (std::size_t c = 0; c < coll.condition_count(); ++c) {
    const std::vector<float> z = normalisation_statistics(coll, how, c).normalise(coll.checkpoints(c));
    s.vectors.insert(s.vectors.end(), z.begin(), z.end());
    for (std::size_t k = 0; k < coll.checkpoint_count(c); ++k)
      s.conditions.insert(s.conditions.end(), coll.features(c).begin(), coll.features(c).end());
  }
  return s;
}

}  // namespace cpdiff::pipeline
