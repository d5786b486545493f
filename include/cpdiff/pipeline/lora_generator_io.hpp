#pragma once
// lora_generator's folder: write_files() and load() (the format is described in lora_generator.hpp).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/pipeline/lora_generator.hpp"

namespace cpdiff::pipeline {

namespace detail {
template <class... Args>
[[noreturn]] void generator_fail(const std::filesystem::path& file, Args&&... args) {
  throw_error<io_error>("pipeline::lora_generator::load", "'", file.string(), "': ", std::forward<Args>(args)...);
}

// j[key] as V; a missing key or another type is an io_error naming the file.
template <class V>
V json_get(const nlohmann::json& j, const char* key, const std::filesystem::path& file) {
  if (!j.is_object() || !j.contains(key)) generator_fail(file, "missing field '", key, "'");
  const auto& v = j.at(key);
  bool ok;
  if constexpr (std::is_same_v<V, bool>) ok = v.is_boolean();
  else if constexpr (std::is_same_v<V, std::string>) ok = v.is_string();
  else if constexpr (std::is_integral_v<V>) ok = v.is_number_unsigned();
  else if constexpr (std::is_floating_point_v<V>) ok = v.is_number();
  else ok = v.is_array() || v.is_object();
  if (!ok) generator_fail(file, "field '", key, "' has the wrong type (", v.type_name(), ")");
  try {
    return v.template get<V>();
  } catch (const nlohmann::json::exception& e) {
    generator_fail(file, "field '", key, "': ", e.what());
  }
}

inline nlohmann::json layout_json(const data::lora_layout& l, io::st_dtype dtype, const std::string& base_model) {
  nlohmann::json modules = nlohmann::json::object();
  for (const auto& s : l.slots())
    modules[s.module][s.which == 'A' ? "lora_A" : "lora_B"] = std::vector<std::size_t>(s.shape.begin(), s.shape.end());
  return {{"r", l.rank()},         {"lora_alpha", l.alpha()},        {"use_rslora", l.use_rslora()},
          {"lora_dropout", l.dropout()}, {"target_modules", l.target_modules()},
          {"dtype", std::string(io::st_dtype_name(dtype))}, {"base_model_name_or_path", base_model},
          {"n", l.size()},          {"modules", modules}};
}

inline data::lora_layout layout_from_json(const nlohmann::json& a, const std::filesystem::path& file) {
  using sizes = std::vector<std::size_t>;
  std::vector<data::lora_tensor_slot> slots;
  const auto modules = json_get<nlohmann::json>(a, "modules", file);
  for (const auto& [module, m] : modules.items())
    for (const char which : {'A', 'B'}) {
      const sizes s = json_get<sizes>(m, which == 'A' ? "lora_A" : "lora_B", file);
      if (s.size() != 2) generator_fail(file, "module '", module, "': lora_", which, " is not 2-D");
      slots.push_back({data::lora_tensor_name(module, which), module, which, shape{s[0], s[1]}, 0});
    }
  try {
    data::lora_layout l(json_get<std::size_t>(a, "r", file), json_get<double>(a, "lora_alpha", file),
                        json_get<bool>(a, "use_rslora", file), json_get<double>(a, "lora_dropout", file),
                        json_get<std::vector<std::string>>(a, "target_modules", file), std::move(slots));
    if (l.size() != json_get<std::size_t>(a, "n", file))
      generator_fail(file, "'n' is ", a["n"].get<std::size_t>(), " but the modules hold ", l.size(), " values");
    return l;
  } catch (const config_error& e) {
    generator_fail(file, "adapter layout: ", e.what());
  } catch (const shape_error& e) {
    generator_fail(file, "adapter layout: ", e.what());
  }
}

// name [n] (F64) of a statistics file (another dtype is refused: the statistics were computed in double), checked finite (and > 0 for a std).
inline std::vector<double> read_stat(const io::safetensors_file& st, const std::string& name, std::size_t n,
                                     bool positive, const std::filesystem::path& file) {
  if (!st.contains(name)) generator_fail(file, "missing tensor '", name, "'");
  const auto& e = st.at(name);
  if (e.shape != std::vector<std::size_t>{n} || e.dtype != io::st_dtype::F64)
    generator_fail(file, "tensor '", name, "' is not F64 [", n, "] (n of the layout)");
  std::vector<double> v = st.to_f64(name);
  for (double x : v)
    if (!std::isfinite(x) || (positive && !(x > 0))) generator_fail(file, "tensor '", name, "' holds ", x);
  return v;
}
}  // namespace detail

template <class B, std::size_t Stride>
void lora_generator<B, Stride>::write_files(const std::filesystem::path& dir) {
  nlohmann::json j;
  j["format"] = format;
  j["version"] = 1;
  j["config"] = config_.to_json();
  j["condition"] = {{"kind", to_string(kind_)}, {"dim", feature_dim_}};
  if (kind_ == condition_kind::images)
    j["condition"]["images"] = std::vector<std::size_t>(enc_->images().begin(), enc_->images().end());
  j["adapter"] = detail::layout_json(layout_, dtype_, base_model_);
  j["conditions"] = nlohmann::json::array();
  io::safetensors_writer st;
  const std::vector<std::size_t> n{layout_.size()};
  st.add("pooled.mean", n, pooled_.mean, io::st_dtype::F64);  // doubles, as computed: de-normalising is exact
  st.add("pooled.std", n, pooled_.std, io::st_dtype::F64);
  std::vector<float> features;
  for (std::size_t i = 0; i < conditions_.size(); ++i) {
    const auto& c = conditions_[i];
    j["conditions"].push_back({{"name", c.name}, {"checkpoints", c.checkpoints}});
    st.add("condition." + std::to_string(i) + ".mean", n, c.stats.mean, io::st_dtype::F64);
    st.add("condition." + std::to_string(i) + ".std", n, c.stats.std, io::st_dtype::F64);
    features.insert(features.end(), c.feature.begin(), c.feature.end());
  }
  st.add("features", std::vector<std::size_t>{conditions_.size(), feature_dim_}, features);
  const shape ls = sys_->latent_sample_shape();
  j["latent"] = {{"shape", std::vector<std::size_t>(ls.begin(), ls.end())}, {"scale", sys_->latent_scale()}};
  j["models"] = {{"autoencoder", nlohmann::json::parse(ae_->describe())},
                 {"denoiser", {{"model", "mlp_denoiser"}, {"width", generator_denoiser::width},
                               {"depth", generator_denoiser::depth}, {"time_embedding", "sinusoidal"}}},
                 {"condition_encoder", enc_->trainable() ? nlohmann::json::parse(enc_->describe())
                                                         : nlohmann::json("identity (the features as given)")}};
  j["fit"] = {{"autoencoder_mse", summary_.autoencoder_mse}, {"diffusion_loss", summary_.diffusion_loss},
              {"seconds", summary_.seconds}};
  st.save(dir / "statistics.safetensors");
  save_weights(dir / "autoencoder.safetensors", *ae_);
  save_weights(dir / "denoiser.safetensors", *net_);
  if (enc_->trainable()) save_weights(dir / "encoder.safetensors", *enc_);
  io::write_file_atomic(dir / index_file, j.dump(2) + "\n");
}

namespace detail {
// A generator folder's index, its format and version checked.
inline nlohmann::json read_generator_index(const std::filesystem::path& folder) {
  constexpr const char* format = "cpdiff.lora_generator";
  const auto file = folder / "generator.json";
  CPDIFF_CHECK(std::filesystem::is_directory(folder), io_error, "pipeline::lora_generator::load", "'", folder.string(),
               "' is not a folder (expected one written by `cpdiff fit`, holding generator.json)");
  io::json_parse_result parsed = io::parse_json(io::read_file_text(file));
  if (!parsed.ok()) generator_fail(file, "not valid JSON: ", parsed.error);
  nlohmann::json j = std::move(parsed.value);
  if (!j.is_object() || j.value("format", "") != format) generator_fail(file, "not a ", format, " index (field 'format')");
  if (json_get<std::size_t>(j, "version", file) != 1) generator_fail(file, "unsupported version ", io::json_excerpt(j["version"]));
  return j;
}
}  // namespace detail

// The settings a saved generator was fitted with (its generator.json), e.g. to pick its type:
//   with_lora_generator(read_generator_config(folder).autoencoder_stride, [&]<class G>() { auto g = G::load(folder); });
inline generator_config read_generator_config(const std::filesystem::path& folder) {
  const nlohmann::json j = detail::read_generator_index(folder);
  const auto file = folder / "generator.json";
  return generator_config::from_json(detail::json_get<nlohmann::json>(j, "config", file), file.string());
}

template <class B, std::size_t Stride>
lora_generator<B, Stride> lora_generator<B, Stride>::load(const std::filesystem::path& folder, B be) {
  using detail::generator_fail;
  using detail::json_get;
  static_assert(std::string_view(format) == "cpdiff.lora_generator" && std::string_view(index_file) == "generator.json");
  const auto file = folder / index_file;
  const nlohmann::json j = detail::read_generator_index(folder);
  const generator_config c = generator_config::from_json(json_get<nlohmann::json>(j, "config", file), file.string());
  if (c.autoencoder_stride != Stride)
    generator_fail(file, "config 'autoencoder_stride' is ", c.autoencoder_stride, "; this is lora_generator<B, ", Stride,
                   "> (pipeline::with_lora_generator picks the type from read_generator_config(folder))");
  const auto cond = json_get<nlohmann::json>(j, "condition", file);
  const std::string kind_name = json_get<std::string>(cond, "kind", file);
  condition_kind kind;
  if (!condition_kind_from_name(kind_name, kind))
    generator_fail(file, "condition kind '", kind_name, "' is not text, vector or images");
  const auto adapter = json_get<nlohmann::json>(j, "adapter", file);
  io::st_dtype dtype;
  if (!io::st_dtype_from_name(json_get<std::string>(adapter, "dtype", file), dtype) || !io::st_dtype_is_float(dtype))
    generator_fail(file, "adapter dtype '", adapter["dtype"].template get<std::string>(), "' is not a floating-point dtype");
  data::lora_layout layout = detail::layout_from_json(adapter, file);
  const std::size_t n = layout.size(), d = json_get<std::size_t>(cond, "dim", file);

  // The statistics and features before the models are built: their tensors, which the file must hold, bound the
  // sizes the models are built with (n, the feature width), so that the index alone cannot make load() allocate.
  const auto stats_file = folder / "statistics.safetensors";
  const io::safetensors_file st = io::load_safetensors(stats_file);
  data::zscore_stats pooled{detail::read_stat(st, "pooled.mean", n, false, stats_file),
                            detail::read_stat(st, "pooled.std", n, true, stats_file)};
  const auto conds = json_get<nlohmann::json>(j, "conditions", file);
  if (!conds.is_array() || conds.empty()) generator_fail(file, "'conditions' is not a non-empty list");
  if (!st.contains("features") || st.at("features").shape != std::vector<std::size_t>{conds.size(), d})
    generator_fail(stats_file, "tensor 'features' is not [", conds.size(), ", ", d, "] (conditions x feature width of ",
                   index_file, ")");
  const std::vector<float> features = st.to_f32("features");
  std::vector<condition_record> records;
  for (std::size_t i = 0; i < conds.size(); ++i) {
    const std::string p = "condition." + std::to_string(i);
    records.push_back({json_get<std::string>(conds[i], "name", file),
                       {features.begin() + std::ptrdiff_t(i * d), features.begin() + std::ptrdiff_t((i + 1) * d)},
                       json_get<std::size_t>(conds[i], "checkpoints", file),
                       {detail::read_stat(st, p + ".mean", n, false, stats_file),
                        detail::read_stat(st, p + ".std", n, true, stats_file)}});
  }
  shape images;
  if (kind == condition_kind::images) {
    const auto s = json_get<std::vector<std::size_t>>(cond, "images", file);
    // k H W == d, by division (no product that could overflow)
    const bool ok = s.size() == 3 && s[0] > 0 && s[1] > 0 && d % s[0] == 0 && (d / s[0]) % s[1] == 0 &&
                    d / s[0] / s[1] == s[2];
    if (!ok)
      generator_fail(file, "condition 'images' ", io::json_excerpt(cond["images"]), " is not [count, height, width] of ",
                     "the feature width 'dim' ", d);
    images = shape{s[0], s[1], s[2]};
  }
  if (kind == condition_kind::text && d != c.text_dim)
    generator_fail(file, "condition 'dim' is ", d, " but the text features of config 'text_dim' have ", c.text_dim,
                   " values: text_feature() would not fit the denoiser");

  lora_generator g(c, std::move(layout), kind, dtype, json_get<std::string>(adapter, "base_model_name_or_path", file),
                   d, images, be);
  g.pooled_ = std::move(pooled);
  g.conditions_ = std::move(records);
  load_weights(folder / "autoencoder.safetensors", *g.ae_);
  load_weights(folder / "denoiser.safetensors", *g.net_);
  if (g.enc_->trainable()) load_weights(folder / "encoder.safetensors", *g.enc_);
  const auto latent = json_get<nlohmann::json>(j, "latent", file);
  const auto ls = json_get<std::vector<std::size_t>>(latent, "shape", file);
  if (shape::from_range(ls.begin(), ls.end()) != g.ae_->latent_shape())
    generator_fail(file, "latent shape ", io::json_excerpt(latent["shape"]), " differs from the autoencoder's ", g.ae_->latent_shape());
  const double scale = json_get<double>(latent, "scale", file);
  if (!(scale > 0 && scale <= 1)) generator_fail(file, "latent scale ", scale, " is not in (0, 1]");
  g.sys_->restore(g.ae_->latent_shape(), static_cast<float>(scale));
  const auto fit = json_get<nlohmann::json>(j, "fit", file);
  auto number = [&](const char* key) {  // null: not measured (a resumed, finished stage)
    return fit.contains(key) && fit[key].is_null() ? std::nan("") : json_get<double>(fit, key, file);
  };
  g.summary_ = {number("autoencoder_mse"), number("diffusion_loss"), number("seconds")};
  return g;
}

}  // namespace cpdiff::pipeline
