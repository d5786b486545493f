#pragma once
// lora_generator: Cond P-Diff stages 3-6 (SPEC.md) as one trained object over a collection of LoRA checkpoints:
// z-score statistics, the parameter autoencoder, the conditional latent diffusion, and generation back to
// adapters in the collection's layout. It saves to and loads from one folder.
//   auto ds = pipeline::load_peft_dataset("runs/manifest.jsonl");                 // stage 2 (peft_dataset.hpp)
//   auto gen = pipeline::lora_generator<>::fit(ds, generator_config{}, {.log = &std::cout});  // stages 3-5
//   gen.save("runs/model");
//   auto back = pipeline::lora_generator<>::load("runs/model");
//   std::vector<lora::adapter> a = back.generate(back.text_feature("sentiment of movie reviews"), 10, 0);
//   (style images: back.generate(back.images_feature({"rot90/0.png", "rot90/1.png"}), 10, 0))
//   lora::save_peft("out/0", a[0], back.base_model(), back.dtype());                 // stage 6's output
//
// The models (compile time): the appendix's style autoencoder (BatchNorm, Tanh-bounded Linear latent of 64,
// optional Linear skip) and the MLP denoiser (width 256, depth 3) beside the condition feature, which the
// diffusion reads as it is (text features from pipeline::text_condition, or the manifest's vectors), or, for
// style images, a feature of them from an encoder trained with the denoiser (generator_encoder.hpp). This is
// the example's measured configuration (README "Quick start"); other models: use cond_pdiff directly.
//
// Folder:
//   generator.json              format, version, settings, condition kind and width, the adapter layout
//                               (rank, alpha, modules and shapes, dtype, base model), the conditions, the latent
//                               shape and scale, the models' configurations
//   statistics.safetensors      pooled.mean / pooled.std [n] and condition.<i>.mean / .std [n] (F64), and the
//                               conditions' features [C, D] (F32; for images their grey pixels [C, k H W])
//   autoencoder.safetensors     weights (tensor/weights_file.hpp; the model's configuration in the metadata)
//   denoiser.safetensors        weights (the EMA average when ema > 0)
//   encoder.safetensors         the style-image encoder's weights (images conditions only)
// Written as a set (io/atomic_folder.hpp). load() refuses a folder whose parts disagree (n, latent, widths,
// configurations), naming the file.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/io/atomic_folder.hpp"
#include "cpdiff/io/png_read.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/models/mlp_denoiser.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/pipeline/cond_pdiff.hpp"
#include "cpdiff/pipeline/generator_config.hpp"
#include "cpdiff/pipeline/generator_encoder.hpp"
#include "cpdiff/pipeline/peft_dataset.hpp"
#include "cpdiff/pipeline/text_condition.hpp"
#include "cpdiff/pipeline/training_set.hpp"
#include "cpdiff/tensor/weights_file.hpp"
#include "cpdiff/train/conditioning.hpp"

namespace cpdiff::pipeline {

struct condition_record {
  std::string name;            // the text, the vector file, or the image files
  std::vector<float> feature;  // [D]
  std::size_t checkpoints = 0;
  data::zscore_stats stats;    // of its own checkpoints
};

struct fit_options {
  std::ostream* log = nullptr;     // progress (nullptr: silent)
  std::filesystem::path work_dir;  // trainer checkpoints autoencoder.ckpt / diffusion.ckpt (empty: none)
  bool resume = false;             // continue from the work folder's checkpoints
  // data parallel (train/data_parallel.hpp): both stages' batches shared by the ranks of this communicator
  // (every rank calls fit with the same data; rank 0 logs and writes the checkpoints; nullptr: one process)
  train::communicator* comm = nullptr;
};

struct fit_summary {
  double autoencoder_mse = 0;   // reconstruction MSE of the training vectors (normalised units)
  double diffusion_loss = 0;    // mean loss of the last 10% of the diffusion steps
  double seconds = 0;
};

// Stride: the autoencoder's (the setting autoencoder_stride; with_lora_generator below picks the type from it).
template <class B = cpu, std::size_t Stride = 2>
class lora_generator {
 public:
  using autoencoder_type = models::style_autoencoder<generator_autoencoder_at<Stride>, float, B>;
  using denoiser_type = models::mlp_denoiser<generator_denoiser, models::sinusoidal<>, float, B>;
  using encoder_type = generator_encoder<B>;
  using system_type = cond_pdiff<autoencoder_type, denoiser_type, encoder_type>;
  static constexpr const char* format = "cpdiff.lora_generator";
  static constexpr const char* index_file = "generator.json";

  // Stages 3-5 on a data set: statistics, then the autoencoder and the diffusion, trained.
  static lora_generator fit(const peft_dataset& ds, const generator_config& c, const fit_options& o = {}, B be = {}) {
    c.validate("pipeline::lora_generator::fit");
    CPDIFF_CHECK(c.autoencoder_stride == Stride, config_error, "pipeline::lora_generator::fit", "the settings' ",
                 "autoencoder_stride is ", c.autoencoder_stride, ", this type's is ", Stride,
                 " (pipeline::with_lora_generator picks the type from the settings)");
    const auto t0 = std::chrono::steady_clock::now();
    const data::lora_collection& coll = ds.collection;
    CPDIFF_CHECK(ds.kind != condition_kind::text || coll.feature_dim() == c.text_dim, config_error,
                 "pipeline::lora_generator::fit", "the data set's text features have ", coll.feature_dim(),
                 " values, the settings' text_dim is ", c.text_dim,
                 " (load_peft_dataset with peft_dataset_options{.text_dim = config.text_dim})");
    CPDIFF_CHECK(ds.kind != condition_kind::images || ds.image_shape.size() == coll.feature_dim(), shape_error,
                 "pipeline::lora_generator::fit", "the data set's image features have ", coll.feature_dim(),
                 " values, its image_shape ", ds.image_shape, " holds ", ds.image_shape.size());
    lora_generator g(c, coll.layout(), ds.kind, ds.dtype, ds.base_model, coll.feature_dim(), ds.image_shape, be);
    g.pooled_ = coll.pooled_statistics();
    for (std::size_t i = 0; i < coll.condition_count(); ++i) {
      const auto f = coll.features(i);
      g.conditions_.push_back({coll.name(i), {f.begin(), f.end()}, coll.checkpoint_count(i), coll.statistics(i)});
    }
    const training_set set = make_training_set(coll, g.normalisation());
    const std::size_t m = set.count, n = set.n, d = set.d;
    if (o.log)
      *o.log << "autoencoder: " << m << " vectors of n = " << n << " (" << coll.condition_count()
             << " conditions) -> latent " << g.ae_->latent_shape() << ", autoencoder stride " << Stride << "\n";
    auto ae_options = g.stage_options(c.autoencoder_steps, c.autoencoder_lr, 0, 11, o);
    const auto ae_checkpoint = g.checkpoint_of(autoencoder_checkpoint, o, ae_options);
    g.summary_.autoencoder_mse = g.sys_->train_autoencoder(set.vectors_view(), ae_options, ae_checkpoint);
    if (o.log)
      *o.log << "  reconstruction MSE " << g.summary_.autoencoder_mse << " (normalised units); latents scaled by "
             << g.sys_->latent_scale() << "\ndiffusion: MLP denoiser on the latent beside the " << d << "-d "
             << to_string(ds.kind) << " feature"
             << (g.enc_->trainable() ? " through the " + g.enc_->kind() + " image encoder (to " +
                                           std::to_string(g.enc_->feature_dim(d)) + ", trained with it)"
                                     : std::string())
             << "\n";
    auto dm_options = g.stage_options(c.diffusion_steps, c.diffusion_lr, c.ema, 12, o);
    const auto dm_checkpoint = g.checkpoint_of(diffusion_checkpoint, o, dm_options);
    g.summary_.diffusion_loss = g.sys_->train_diffusion(set.conditions_view(), dm_options, dm_checkpoint);
    if (o.log) {
      const auto ts = loss_profile_timesteps(c.timesteps);
      *o.log << "  denoising loss by timestep (eps MSE on the training latents): "
             << format_loss_by_timestep(ts, g.sys_->loss_by_timestep(set.conditions_view(), ts, c.seed + 13))
             << "\n";
    }
    g.summary_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
  }

  // Stage 6: `count` adapters for the condition feature [D], de-normalised with the pooled statistics, or with
  // per_condition those of the nearest training condition (nearest_condition()).
  std::vector<lora::adapter> generate(std::span<const float> feature, std::size_t count, std::uint64_t seed) {
    constexpr const char* where = "pipeline::lora_generator::generate";
    CPDIFF_CHECK(feature.size() == feature_dim_, shape_error, where, "the condition has ", feature.size(),
                 " values; this generator was trained on ", to_string(kind_), " features of ", feature_dim_);
    CPDIFF_CHECK(count > 0, config_error, where, "count must be positive");
    rng g{seed, 0};
    const auto z = sys_->generate(feature, count, g, {.ddim_steps = config_.ddim_steps});
    for (float v : z)
      CPDIFF_CHECK(std::isfinite(v), numeric_error, where, "the diffusion produced a non-finite value");
    const std::vector<float> v = stats_for(nearest_condition(feature)).denormalise(z);
    std::vector<lora::adapter> out;
    for (std::size_t i = 0; i < count; ++i)
      out.push_back(layout_.unflatten(std::span<const float>(v).subspan(i * layout_.size(), layout_.size())));
    return out;
  }

  // The training condition whose feature is nearest (Euclidean) to `feature`.
  std::size_t nearest_condition(std::span<const float> feature) const {
    std::size_t best = 0;
    double best_d = INFINITY;
    for (std::size_t i = 0; i < conditions_.size(); ++i) {
      double dist = 0;
      for (std::size_t j = 0; j < feature_dim_; ++j) dist += std::pow(double(feature[j]) - conditions_[i].feature[j], 2);
      if (dist < best_d) best = i, best_d = dist;
    }
    return best;
  }

  // A description's feature, for a generator trained on text conditions.
  std::vector<float> text_feature(const std::string& text) const {
    CPDIFF_CHECK(kind_ == condition_kind::text, config_error, "pipeline::lora_generator::text_feature",
                 "this generator was trained on ", to_string(kind_), " conditions, not text");
    return text_condition(config_.text_dim).encode(text);
  }
  // Style images' feature [k H W] (their grey pixels), for a generator trained on images conditions: as many
  // PNG files of the size it was trained on (image_shape()).
  std::vector<float> images_feature(const std::vector<std::filesystem::path>& files) const {
    constexpr const char* where = "pipeline::lora_generator::images_feature";
    CPDIFF_CHECK(kind_ == condition_kind::images, config_error, where, "this generator was trained on ",
                 to_string(kind_), " conditions, not images");
    const shape& want = enc_->images();
    CPDIFF_CHECK(files.size() == want[0], shape_error, where, files.size(), " images given; this generator was trained on ",
                 want[0], " images per condition");
    std::vector<float> row;
    for (const auto& f : files) {
      const io::grey_image im = io::read_png_grey(f);
      CPDIFF_CHECK(im.height == want[1] && im.width == want[2], shape_error, where, "'", f.string(), "' is ",
                   im.height, " x ", im.width, " pixels; this generator was trained on ", want[1], " x ", want[2]);
      row.insert(row.end(), im.pixels.begin(), im.pixels.end());
    }
    return row;
  }

  void save(const std::filesystem::path& folder) {
    io::write_folder_atomic(folder, [&](const std::filesystem::path& tmp) { write_files(tmp); }, index_file);
  }
  static lora_generator load(const std::filesystem::path& folder, B be = {});

  const generator_config& config() const { return config_; }
  const data::lora_layout& layout() const { return layout_; }
  condition_kind kind() const { return kind_; }
  const shape& image_shape() const { return enc_->images(); }  // [k, H, W] for images conditions (else empty)
  std::size_t feature_dim() const { return feature_dim_; }
  io::st_dtype dtype() const { return dtype_; }
  const std::string& base_model() const { return base_model_; }
  const std::vector<condition_record>& conditions() const { return conditions_; }
  const fit_summary& summary() const { return summary_; }
  system_type& system() { return *sys_; }
  autoencoder_type& autoencoder() { return *ae_; }
  denoiser_type& denoiser() { return *net_; }
  encoder_type& encoder() { return *enc_; }

 private:
  lora_generator(generator_config c, data::lora_layout layout, condition_kind kind, io::st_dtype dtype,
                 std::string base_model, std::size_t feature_dim, shape images, B be)
      : config_(std::move(c)), layout_(std::move(layout)), kind_(kind), dtype_(dtype),
        base_model_(std::move(base_model)), feature_dim_(feature_dim),
        ae_(std::make_unique<autoencoder_type>(layout_.size(), config_.seed + 2,
                                               typename autoencoder_type::options{
                                                   .input_noise = config_.input_noise,
                                                   .latent_noise = config_.latent_noise, .clamp_latent = true,
                                                   .tanh_latent = true, .linear_skip = config_.linear_skip},
                                               be)),
        enc_(kind == condition_kind::images
                 ? std::make_unique<encoder_type>(config_.image_encoder, images, config_.image_feature, config_.seed + 4, be)
                 : std::make_unique<encoder_type>(be)),
        net_(std::make_unique<denoiser_type>(ae_->latent_shape(), enc_->feature_dim(feature_dim_), config_.timesteps,
                                             config_.seed + 3, be)),
        sys_(std::make_unique<system_type>(*ae_, *net_, *enc_, diffusion::noise_schedule(config_.timesteps))) {
    CPDIFF_CHECK(feature_dim_ > 0, config_error, "pipeline::lora_generator", "the conditions have no features");
  }

  pipeline::normalisation normalisation() const {
    return config_.normalise == "pooled" ? normalisation::pooled : normalisation::per_condition;
  }
  const data::zscore_stats& stats_for(std::size_t condition) const {
    return normalisation() == normalisation::pooled ? pooled_ : conditions_[condition].stats;
  }
  static constexpr const char* autoencoder_checkpoint = "autoencoder.ckpt";
  static constexpr const char* diffusion_checkpoint = "diffusion.ckpt";

  // One stage's training options; its checkpoints go where checkpoint_of(file) says.
  train::train_options stage_options(std::size_t steps, double lr, double ema, std::uint64_t seed_offset,
                                     const fit_options& o) const {
    train::train_options t{.steps = steps, .batch_size = config_.batch,
                           .adamw = {.lr = lr, .weight_decay = config_.weight_decay},
                           .schedule = train::lr_schedule::cosine, .warmup_steps = steps / 20,
                           .seed = config_.seed + seed_offset, .log = o.log, .log_every = std::max<std::size_t>(1, steps / 10)};
    if (ema > 0) {
      t.ema_decay = ema;
      t.ema_warmup = true;
    }
    t.comm = o.comm;
    return t;
  }
  // Sets the periodic checkpoints of `t` (when a work folder is given) and says where the stage's file is.
  stage_checkpoint checkpoint_of(const char* file, const fit_options& o, train::train_options& t) const {
    if (o.work_dir.empty()) return {};
    std::error_code ec;
    std::filesystem::create_directories(o.work_dir, ec);
    CPDIFF_CHECK(!ec, io_error, "pipeline::lora_generator::fit", "cannot create the work folder '",
                 o.work_dir.string(), "': ", ec.message());
    if (config_.checkpoint_every > 0) {
      t.checkpoint_every = config_.checkpoint_every;
      t.checkpoint_path = o.work_dir / file;
    }
    return {o.work_dir / file, o.resume};
  }

  void write_files(const std::filesystem::path& dir);

  generator_config config_;
  data::lora_layout layout_;
  condition_kind kind_;
  io::st_dtype dtype_;
  std::string base_model_;
  std::size_t feature_dim_;
  data::zscore_stats pooled_;
  std::vector<condition_record> conditions_;
  fit_summary summary_;
  std::unique_ptr<autoencoder_type> ae_;
  std::unique_ptr<encoder_type> enc_;  // before net_: the denoiser's condition width is the encoder's output
  std::unique_ptr<denoiser_type> net_;
  std::unique_ptr<system_type> sys_;
};

// f.template operator()<lora_generator<B, S>>() with S the stride the settings name (2 or 4):
//   with_lora_generator(config.autoencoder_stride, [&]<class G>() { G::fit(ds, config).save("model"); });
// (the stride of a saved generator: read_generator_config(folder).autoencoder_stride, lora_generator_io.hpp).
template <class B = cpu, class F>
decltype(auto) with_lora_generator(std::size_t stride, F&& f) {
  if (stride == 4) return f.template operator()<lora_generator<B, 4>>();
  CPDIFF_CHECK(stride == 2, config_error, "pipeline::with_lora_generator", "autoencoder_stride ", stride,
               " is not 2 or 4");
  return f.template operator()<lora_generator<B, 2>>();
}

}  // namespace cpdiff::pipeline

#include "cpdiff/pipeline/lora_generator_io.hpp"
