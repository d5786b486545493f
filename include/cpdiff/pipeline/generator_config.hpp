#pragma once
// generator_autoencoder / generator_denoiser: the compile-time model sizes of a pipeline::lora_generator (the
// example's measured configuration; lora_generator.hpp).
// generator_config: its run-time settings, read from and written to JSON with the same names:
//   {"normalise": "pooled", "text_dim": 32, "seed": 0, "autoencoder_stride": 2,
//    "autoencoder_steps": 2000, "autoencoder_lr": 1e-3, "input_noise": 0.001, "latent_noise": 0.1,
//    "linear_skip": true, "diffusion_steps": 10000, "diffusion_lr": 1e-3, "ema": 0.999, "timesteps": 1000,
//    "batch": 64, "weight_decay": 2e-6, "ddim_steps": 60, "checkpoint_every": 500,
//    "image_encoder": "pixels", "image_feature": 64}
// A file may give any subset; the rest keep these defaults (the example's measured configuration, README
// "Quick start"). quick(): the same with 15% of the steps, for a fit of a few minutes. Unknown keys, wrong types
// and values out of range are config_errors naming the source and the key.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"

namespace cpdiff::pipeline {

// The parameter autoencoder (models::style_autoencoder's config) and the MLP denoiser (models::mlp_denoiser's).
// The autoencoder's stride is the setting autoencoder_stride: 2 (the appendix's), or 4 for LoRAs of tens of
// thousands of parameters (a third of the multiply-adds: 159 ms a training step at n = 24,576 against 306 ms).
template <std::size_t Stride>
struct generator_autoencoder_at {
  static constexpr std::array<std::size_t, 4> channels{8, 16, 16, 8};
  static constexpr std::size_t kernel = 5, latent = 64, stride = Stride;
};
using generator_autoencoder = generator_autoencoder_at<2>;
struct generator_denoiser {
  static constexpr std::size_t width = 256, depth = 3;
};

struct generator_config {
  std::string normalise = "pooled";  // z-score statistics: "pooled" over all conditions, or "per_condition"
  std::size_t text_dim = 32;         // width of the text features (pipeline::text_condition)
  std::uint64_t seed = 0;
  std::size_t autoencoder_stride = 2;  // 2 or 4 (generator_autoencoder_at); each needs its lora_generator type
  std::size_t autoencoder_steps = 2000;
  double autoencoder_lr = 1e-3;
  double input_noise = 0.001;  // SPEC step 4: x~ = (1 - a) x + a eps
  double latent_noise = 0.1;   // z~ = (1 - b) z + b eps'
  bool linear_skip = true;     // the style autoencoder's decoder adds Linear(latent -> n)
  std::size_t diffusion_steps = 10000;
  double diffusion_lr = 1e-3;
  double ema = 0.999;  // EMA decay of the denoiser (0: none)
  std::size_t timesteps = 1000;
  std::size_t batch = 64;
  double weight_decay = 2e-6;
  std::size_t ddim_steps = 60;  // 0: DDPM ancestral over all timesteps
  std::size_t checkpoint_every = 500;  // trainer checkpoints for `cpdiff fit --resume` (0: only at stage ends)
  // style-image conditions (generator_encoder.hpp): "pixels" (a Linear on the pixels) or "conv" (the appendix's
  // style-image encoder), trained with the denoiser into features of image_feature values
  std::string image_encoder = "pixels";
  std::size_t image_feature = 64;

  static generator_config quick() {
    generator_config c;
    c.autoencoder_steps = 300;
    c.diffusion_steps = 1500;
    c.checkpoint_every = 250;
    return c;
  }

  // f(name, member) for every setting: the one list to_json, from_json and the docs follow.
  template <class Self, class F>
  static void for_each(Self& c, F&& f) {
    f("normalise", c.normalise);
    f("text_dim", c.text_dim);
    f("seed", c.seed);
    f("autoencoder_stride", c.autoencoder_stride);
    f("autoencoder_steps", c.autoencoder_steps);
    f("autoencoder_lr", c.autoencoder_lr);
    f("input_noise", c.input_noise);
    f("latent_noise", c.latent_noise);
    f("linear_skip", c.linear_skip);
    f("diffusion_steps", c.diffusion_steps);
    f("diffusion_lr", c.diffusion_lr);
    f("ema", c.ema);
    f("timesteps", c.timesteps);
    f("batch", c.batch);
    f("weight_decay", c.weight_decay);
    f("ddim_steps", c.ddim_steps);
    f("checkpoint_every", c.checkpoint_every);
    f("image_encoder", c.image_encoder);
    f("image_feature", c.image_feature);
  }

  nlohmann::json to_json() const {
    nlohmann::json j = nlohmann::json::object();
    for_each(*this, [&](const char* name, const auto& v) { j[name] = v; });
    return j;
  }

  // Settings of `j` over `base` (unknown keys refused); `source` names the file in errors.
  static generator_config from_json(const nlohmann::json& j, const std::string& source) {
    return from_json(j, source, generator_config());
  }
  static generator_config from_json(const nlohmann::json& j, const std::string& source, generator_config base) {
    constexpr const char* where = "pipeline::generator_config";
    CPDIFF_CHECK(j.is_object(), config_error, where, source, ": expected a JSON object of settings");
    for (const auto& item : j.items()) {
      // Named copies, not a structured binding: clang 14 cannot capture bindings in the lambda below.
      const std::string& key = item.key();
      const nlohmann::json& value = item.value();
      bool known = false;
      for_each(base, [&](const char* name, auto& member) {
        if (key != name) return;
        known = true;
        assign(member, value, source, name);
      });
      if (!known) throw_error<config_error>(where, source, ": unknown setting '", key, "' (known: ", names(), ")");
    }
    base.validate(source);
    return base;
  }

  void validate(const std::string& source) const {
    constexpr const char* where = "pipeline::generator_config";
    auto require = [&](bool ok, const char* key, const char* what) {
      CPDIFF_CHECK(ok, config_error, where, source, ": '", key, "' must be ", what);
    };
    require(normalise == "pooled" || normalise == "per_condition", "normalise", "\"pooled\" or \"per_condition\"");
    require(text_dim > 0, "text_dim", "> 0");
    require(autoencoder_stride == 2 || autoencoder_stride == 4, "autoencoder_stride", "2 or 4");
    require(image_encoder == "pixels" || image_encoder == "conv", "image_encoder", "\"pixels\" or \"conv\"");
    require(image_feature > 0 && image_feature <= 65536, "image_feature", "in [1, 65536]");
    require(autoencoder_steps > 20, "autoencoder_steps", "> 20 (the warm-up is 5%)");
    require(diffusion_steps > 20, "diffusion_steps", "> 20 (the warm-up is 5%)");
    require(batch > 0, "batch", "> 0");
    // the noise schedule holds every step (the paper's T is 1000): a bound keeps a config file from allocating
    require(timesteps > 1 && timesteps <= 1'000'000, "timesteps", "in [2, 1000000]");
    require(ddim_steps <= timesteps, "ddim_steps", "<= timesteps");
    require(autoencoder_lr > 0 && std::isfinite(autoencoder_lr), "autoencoder_lr", "finite and > 0");
    require(diffusion_lr > 0 && std::isfinite(diffusion_lr), "diffusion_lr", "finite and > 0");
    require(weight_decay >= 0 && std::isfinite(weight_decay), "weight_decay", "finite and >= 0");
    require(ema >= 0 && ema < 1, "ema", "in [0, 1)");
    require(input_noise >= 0 && input_noise <= 1, "input_noise", "in [0, 1]");
    require(latent_noise >= 0 && latent_noise <= 1, "latent_noise", "in [0, 1]");
  }

 private:
  static std::string names() {
    std::string s;
    const generator_config defaults;
    for_each(defaults, [&](const char* name, const auto&) { s += (s.empty() ? "" : ", ") + std::string(name); });
    return s;
  }
  template <class V>
  static void assign(V& member, const nlohmann::json& value, const std::string& source, const char* key) {
    bool ok;
    if constexpr (std::is_same_v<V, bool>) ok = value.is_boolean();
    else if constexpr (std::is_same_v<V, std::string>) ok = value.is_string();
    else if constexpr (std::is_integral_v<V>) ok = value.is_number_unsigned();
    else ok = value.is_number();
    const char* expected = std::is_same_v<V, bool> ? "true or false"
                           : std::is_same_v<V, std::string> ? "a string"
                           : std::is_integral_v<V> ? "a non-negative integer" : "a number";
    CPDIFF_CHECK(ok, config_error, "pipeline::generator_config", source, ": '", key, "' must be ", expected, " (a ",
                 value.type_name(), " is given)");
    member = value.template get<V>();
  }
};

}  // namespace cpdiff::pipeline
