// libFuzzer harness for pipeline::lora_generator<>::load (pipeline/lora_generator_io.hpp), which reads a folder:
// generator.json (settings, condition kind and width, adapter layout, conditions, latent), statistics.safetensors
// and the two models' weights files (tensor/weights_file.hpp's load_weights).
//
// Input: fuzz_util.hpp's "archive": records  u8 k | file name (k bytes) | u32 n | content (n bytes), at most 16
// files, written into a per-process scratch folder (names made plain: no '/', not "." or ".."). The seeds hold
// the files lora_generator::save writes for two tiny generators (vector and text conditions), so the fuzzer can
// both edit them and rename them.
// A generator that loads is used: its layout, conditions and statistics (finite, std > 0, [n]), its settings,
// the feature of its first condition (or, for text conditions, text_feature(), which must have the width of the
// generator's features), nearest_condition(), and generate() of one adapter with a fixed seed when sampling takes
// at most 100 denoiser steps (a numeric_error, the diffusion producing a non-finite value, is a refusal generate
// documents: the weights files may hold any values the model's dtype can).
// A cpdiff error (any std::exception) from load() is the expected outcome for a bad folder; anything else is a
// finding, and so is any other exception from using a generator that load() accepted.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <vector>

#include "cpdiff/backend/cpu.hpp"  // the kernels (backend/ops.hpp: a program includes them)
#include "cpdiff/pipeline/lora_generator.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("generator");
  return d;
}

using generator = cpdiff::pipeline::lora_generator<>;

// The most denoiser evaluations one generate() may take here (DDIM steps, or all timesteps for DDPM).
constexpr std::size_t max_sampling_steps = 100;

void exercise(generator& g) {
  const cpdiff::data::lora_layout& layout = g.layout();
  const std::size_t n = layout.size(), d = g.feature_dim();
  if (n == 0 || d == 0 || g.conditions().empty()) __builtin_trap();
  for (const auto& s : layout.slots())
    if (s.offset + s.size() > n) __builtin_trap();
  for (const auto& c : g.conditions()) {
    if (c.feature.size() != d || c.stats.dim() != n) __builtin_trap();
    for (std::size_t j = 0; j < n; ++j)
      if (!std::isfinite(c.stats.mean[j]) || !(c.stats.std[j] > 0) || !std::isfinite(c.stats.std[j])) __builtin_trap();
    sink = sink + c.name.size() + c.checkpoints;
  }
  const auto& config = g.config();
  const auto again = cpdiff::pipeline::generator_config::from_json(config.to_json(), "fuzz");
  if (again.to_json() != config.to_json()) __builtin_trap();
  if (!cpdiff::io::st_dtype_is_float(g.dtype())) __builtin_trap();
  sink = sink + g.base_model().size();

  std::vector<float> feature = g.conditions().front().feature;
  if (g.kind() == cpdiff::pipeline::condition_kind::text) {
    feature = g.text_feature("sentiment of movie reviews");
    if (feature.size() != d) __builtin_trap();  // a text generator that cannot take its own text features
  }
  if (g.nearest_condition(feature) >= g.conditions().size()) __builtin_trap();
  const std::size_t steps = config.ddim_steps > 0 ? config.ddim_steps : config.timesteps;
  if (steps > max_sampling_steps) return;
  std::vector<cpdiff::lora::adapter> a;
  try {
    a = g.generate(feature, 1, 7);
  } catch (const cpdiff::numeric_error& e) {
    cpdiff_fuzz::refused("lora_generator::generate", e);
    return;
  }
  if (a.size() != 1 || a[0].parameter_count() != n || !(cpdiff::data::lora_layout(a[0]) == layout)) __builtin_trap();
  sink = sink + a[0].size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return cpdiff_fuzz::fuzz_folder_reader(
      scratch(), data, size, "lora_generator::load", [](const auto& path) { return generator::load(path); },
      [](generator& g) { exercise(g); });
}
