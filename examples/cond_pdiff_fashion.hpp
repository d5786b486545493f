// Cond P-Diff on Fashion-MNIST, end to end: the paper's three settings in miniature (SPEC.md, issue 5).
//
//   1. tasks:   six classification tasks (label groupings / relabellings) on the frozen base (--base vit, the
//               default: a Hugging Face-layout ViT with LoRA on query / value, n = 24,576; --base mlp: a 784-64-10
//               MLP with LoRA on fc1 / fc2, n = 3,688); the condition is a written task description through a
//               frozen text encoder.
//   2. styles:  eight image styles (rotated, flipped, blurred, edges, ...), a LoRA per style; the condition
//               is a handful of style images (a Linear on their pixels, or the style-image encoder), trained
//               jointly with the denoiser.
//   3. interp:  two style LoRAs interpolated, theta(l) = (1 - l) theta_1 + l theta_2, 1000 values of l, the
//               condition being images of the style interpolated at l; trained on l in [0.1, 0.2) U [0.3, 0.4)
//               U ... U [0.9, 1.0), generated for l never seen.
//
// The parts, and why these by default (each measured; README "Quick start"): all conditions' LoRAs are z-scored
// together (--normalise pooled), so the generated vector itself must say which condition it is for; with SPEC
// step 3's per-condition statistics the de-normalisation alone lands near the trained LoRAs (the report's
// noise control shows it). Under pooled statistics p-diff's InstanceNorm autoencoder cannot tell the
// conditions apart (it divides each vector by its own scale), so the appendix's style AE is used, BatchNorm
// and a Tanh latent, with a linear skip in its decoder (--ae-skip; the shared convs alone lose up to 6.7
// points). The denoiser is an MLP over the flat latent with the condition feature beside it (--denoiser mlp;
// the paper's U-Nets are --denoiser unet), and the style condition is a Linear on the style
// images' pixels (--style-encoder pixels): the style-image encoder's global pooling cannot tell rot90 from
// hflip.
//
// Each experiment: collect LoRA checkpoints per condition -> normalise -> train the parameter autoencoder
// -> train the conditional diffusion -> generate N LoRAs per condition -> de-normalise -> load into the
// frozen base -> evaluate, and the paper's protocol (best / mean / median of the generated beside the
// best and mean of the trained checkpoints and the base without LoRA). Results go to --out: report.md,
// report.json, figures, and every generated adapter as a PEFT folder.
//
// The program is written once over the backend Dev that trains and samples the parameter autoencoder, the
// denoiser and the condition encoder (stages 4-6): cond_pdiff_fashion.cpp runs it on the CPU,
// cond_pdiff_fashion_cuda.cu on a GPU. Collecting the LoRAs and evaluating them stays on the CPU either way.
#pragma once
#include <cpdiff/cpdiff.hpp>
#include <cpdiff/data/fashion_mnist.hpp>
#include <cpdiff/data/image_styles.hpp>
#include <cpdiff/data/lora_collection.hpp>
#include <cpdiff/train/data_parallel.hpp>
#include <cpdiff/train/finetune.hpp>
#include <cpdiff/io/peft.hpp>
#include <cpdiff/data/tasks.hpp>
#include <cpdiff/models/bottom_unet.hpp>
#include <cpdiff/models/lora_mlp.hpp>
#include <cpdiff/models/peft_classifier.hpp>
#include <cpdiff/models/vit.hpp>
#include <cpdiff/models/vit_hf.hpp>
#include <cpdiff/models/mlp_denoiser.hpp>
#include <cpdiff/models/pdiff_autoencoder.hpp>
#include <cpdiff/models/pdiff_unet.hpp>
#include <cpdiff/models/style_autoencoder.hpp>
#include <cpdiff/models/style_image_encoder.hpp>
#include <cpdiff/pipeline/cond_pdiff.hpp>
#include <cpdiff/pipeline/lora_generator.hpp>
#include <cpdiff/pipeline/text_condition.hpp>

#include "cond_pdiff_report.hpp"
#include "example_flags.hpp"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <filesystem>
#include <functional>
#include <sstream>
#include <iostream>

using namespace cpdiff;
namespace fs = std::filesystem;

// ---- sizes that define the architectures (compile time) ----
// The transformer base (--base vit): a ViT laid out as Hugging Face's ViTForImageClassification, 28x28 images in 16
// patches of 7x7, width 64, 6 layers of 4 heads, MLP 128 (218 K parameters). LoRA on query and value at
// --lora 16,32: 12 projections x 16 x (64 + 64) = 24,576 parameters per adapter.
struct example_vit {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 64, depth = 6, heads = 4, mlp_dim = 128,
                               classes = 10;
};
using example_vit_model = models::peft_classifier<models::vit<example_vit>>;
constexpr std::size_t hidden = 64;  // the base of --base mlp: 784 -> 64 -> 10
// p-diff's parameter autoencoder (--autoencoder pdiff): its "small" layout (fold 3, kernel 3), 4 latent channels.
struct example_ae {
  static constexpr std::size_t fold = 3, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{4, 4, 4, 4}, dec{4, 64, 64, 8};
};
// The default autoencoder: the appendix's (style) family, BatchNorm and a Tanh-bounded Linear latent. Not the
// p-diff AE: InstanceNorm divides every sample by its own scale, and pooled z-scored conditions differ mainly in
// scale and offset (in the interpolation theta(l) is one direction times a scalar, so a p-diff encoder sees only
// the sign of (l - mean l) and its latents fall into two clusters).
// The MLP base's (n = 3,688): the same sizes as `cpdiff fit` trains (pipeline::lora_generator), one definition.
// The ViT base's (n = 24,576): the same channels at stride 4 (models::style_vit), a third of the multiply-adds.
template <class Model>
using example_style_ae =
    std::conditional_t<std::is_same_v<Model, example_vit_model>, models::style_vit, pipeline::generator_autoencoder>;
// The default denoiser (and the interpolation's): an MLP on the flat latent with the condition feature beside it.
// The paper's U-Nets (--denoiser unet: tasks and styles, on either autoencoder) take the sinusoidal timestep
// embedding: with p-diff's learned table they do not learn small t (models/time_embedding.hpp, README).
using example_mlp_denoiser = pipeline::generator_denoiser;
// The concat-condition U-Net (--denoiser unet, tasks): p-diff's layout at a quarter of its width (64..512 -> 16..128).
struct example_unet {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 64, 128};
  static constexpr std::size_t kernel = 3;
};
// The bottom-embedding U-Net (--denoiser unet, styles) and the appendix's style-image projector
// (--style-encoder image), small.
struct example_bottom_unet {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 32, 16};
  static constexpr std::size_t kernel = 3, groups = 8;
};
struct example_style_encoder {
  static constexpr std::size_t in_channels = 1, c1 = 16, c2 = 32, kernel = 3;
};
constexpr std::size_t style_images_per_condition = 5;

struct flags {
  fs::path out = "out/cond_pdiff";
  fs::path data = data::default_fashion_mnist_dir;
  std::string experiments = "tasks,styles,interp";
  std::string base = "vit";   // the frozen base the LoRAs adapt: vit (Hugging Face ViT, LoRA on query / value) or
                              // mlp (784-64-10, LoRA on fc1 / fc2)
  std::string lora = "";      // rank,alpha: the paper's (1,8) (2,8) (4,16) (16,32); "" = 16,32 (vit), 4,16 (mlp)
  std::uint64_t seed = 0;
  std::size_t train_images = 12000, test_images = 2000;
  std::size_t pretrain_epochs = 4;
  std::size_t finetune_epochs = 0, checkpoints = 0;  // 0: 2 epochs and K = 32 (vit), 4 epochs and K = 64 (mlp)
  std::size_t generations = 10;                                          // N per condition
  std::size_t ae_steps = 0, batch = 64;  // 0: 600 (vit, n = 24,576), 2000 (mlp, n = 3,688)
  std::size_t ae_batch = 0;              // the autoencoder's batch (0: --batch)
  double ae_lr = 1e-3;
  std::size_t diffusion_steps = 0;  // 0: 10000 (3000 with --quick), for every denoiser
  std::size_t ddim_steps = 60;  // DDIM with 60 steps as p-diff's newer code; 0: DDPM over all 1000 steps
  std::size_t interp_values = 1000, interp_heldout = 10;
  double ema = 0.999;  // EMA decay of the denoiser (0: none)
  // The defaults are the configuration measured to generate each condition's LoRA from the condition alone
  // (README "Quick start"); the paper's components are one flag away.
  std::string normalise = "pooled";      // z-score statistics of tasks / styles: pooled over all conditions, or
                                         // per condition (SPEC step 3; then the de-normalisation alone says which)
  std::string denoiser = "mlp";          // tasks / styles: mlp_denoiser (no normalisation), or the paper's U-Nets
  std::string autoencoder = "style";     // tasks / styles: the appendix's style AE (BatchNorm), or p-diff's (InstanceNorm)
  std::string style_encoder = "pixels";  // styles: a Linear on the style images' pixels, or the style-image encoder
  std::string ae_skip = "on";            // the style AE's decoder adds Linear(latent -> n) (style_autoencoder.hpp)
  std::string ae_noise_mean = "on";      // the style AE's encode / decode read (1-a) x / (1-b) z (style_autoencoder.hpp)
  bool quick = false;
  std::string base_model;  // the base's name in the adapters' adapter_config.json (set from --base)
  // Under mpirun (cond_pdiff_fashion.cpp): the ranks share the LoRA fine-tuning (condition i on rank i % K) and
  // every batch of the autoencoder and the diffusion; rank 0 alone prints and writes. nullptr: one process.
  train::communicator* comm = nullptr;
  bool writes() const { return comm == nullptr || comm->is_root(); }
};

// ---- one condition of an experiment ----
struct condition {
  std::string name;
  bool seen = true;
  data::task task;
  std::vector<float> row;  // what the condition encoder reads (a text feature, or k style images)
  data::labelled_images test;
  double base_acc = 0;
  std::vector<double> trained, generated;  // accuracies (percent)
};

template <class Mlp>
double accuracy_pct(Mlp& m, const data::labelled_images& d) {
  return 100.0 * m.accuracy(d.images, d.labels);
}

// Style images of a condition: the style applied to the first k test images of class 0..k-1 (fixed, unseen
// in training), flattened [k * 784].
inline std::vector<float> style_row(const data::fashion_mnist_split& refs, const data::style& s) {
  std::vector<float> imgs(refs.images.begin(), refs.images.begin() + style_images_per_condition * 784);
  return s.apply(imgs);
}

// D(E(x)) of one normalised vector x (host), through the autoencoder on its own backend.
template <class AE>
std::vector<float> through_autoencoder(AE& ae, const std::vector<float>& x) {
  const typename AE::backend_type be{};
  tensor<float, typename AE::backend_type> d({1, x.size()});
  from_host(be, std::span<const float>(x), d.view());
  return to_host(be, ae.decode(ae.encode(d.cview())));
}

// Generates N LoRAs per condition, de-normalises with `denorm(c, v)`, evaluates them in `mlp`, saves each
// as a PEFT folder. Returns the generated accuracies per condition in cs[c].generated; `seen_vector(ci, flat)`
// (optional) sees every de-normalised vector.
template <class Sys, class Mlp, class Denorm>
void generate_and_evaluate(Sys& sys, Mlp& mlp, const data::lora_layout& layout, std::vector<condition>& cs,
                           Denorm denorm, const flags& f, const fs::path& out, example::experiment_record& rec,
                           const std::function<void(std::size_t, std::span<const float>)>& seen_vector = {}) {
  const std::string& experiment = rec.name;
  rng g{f.seed ^ 0x67656e, 0};
  // adapters/<experiment>/evaluation.json: each generated adapter's task and accuracy, for tools/pytorch_check.py
  nlohmann::json evaluation = nlohmann::json::array();
  for (std::size_t ci = 0; ci < cs.size(); ++ci) {
    auto& c = cs[ci];
    const auto v = sys.generate(std::span<const float>(c.row), f.generations, g, {.ddim_steps = f.ddim_steps});
    rec.generated_latents.insert(rec.generated_latents.end(), sys.last_latents().begin(), sys.last_latents().end());
    const std::size_t n = layout.size();
    for (std::size_t i = 0; i < f.generations; ++i) {
      const auto flat = denorm(c, std::span<const float>(v.data() + i * n, n));
      if (seen_vector) seen_vector(ci, flat);
      const lora::adapter a = layout.unflatten(flat);
      mlp.load_adapter(a);
      c.generated.push_back(accuracy_pct(mlp, c.test));
      const std::string folder = example::slug(c.name) + "_" + std::to_string(i);
      if (f.writes()) lora::save_peft(out / "adapters" / experiment / folder, a, f.base_model);
      evaluation.push_back({{"adapter", folder}, {"condition", c.name}, {"label_map", c.task.label_map},
                            {"style", c.task.style.name()}, {"test_images", f.test_images},
                            {"accuracy", c.generated.back()}});
    }
    // Control: N(0, 1) noise instead of the generated vectors, through the same de-normalisation. With
    // per-condition statistics this alone lands near the trained checkpoints (their spread is small), so the
    // generated accuracies say little about the diffusion model unless they beat it; see the report's notes.
    std::vector<double> control;
    std::vector<float> noise(n);
    for (std::size_t i = 0; i < f.generations; ++i) {
      for (std::size_t j = 0; j < n; ++j) noise[j] = float(philox_normal(f.seed ^ 0x6e6f697365, ci * 1000 + i, j));
      mlp.load_adapter(layout.unflatten(denorm(c, std::span<const float>(noise))));
      control.push_back(accuracy_pct(mlp, c.test));
    }
    rec.control.push_back(example::mean(control));
    if (f.writes()) io::write_file_atomic(out / "adapters" / experiment / "evaluation.json", evaluation.dump(1) + "\n");
    std::cout << "  " << experiment << " / " << c.name << (c.seen ? "" : " (held out)") << ": generated best "
              << example::best(c.generated) << ", mean " << example::mean(c.generated) << "  (trained best "
              << (c.trained.empty() ? 0.0 : example::best(c.trained)) << ", base " << c.base_acc
              << "; control: noise de-normalised, mean " << example::mean(control) << ")\n";
  }
}

// "Denoising loss by timestep: t=0 ..., t=10 ..., ..." of a trained system on its training latents (one line
// for the log and the report's notes): where a denoiser's final loss comes from, by noise level.
template <class Sys>
std::string loss_by_timestep_line(Sys& sys, tensor_view<const float, host_space> rows, std::uint64_t seed) {
  const std::vector<std::size_t> ts = pipeline::loss_profile_timesteps(1000);
  return "Denoising loss by timestep (eps MSE on the training latents): " +
         pipeline::format_loss_by_timestep(ts, sys.loss_by_timestep(rows, ts, seed));
}

// Fills an experiment's record for the report: results per condition, losses, latents.
template <class Sys>
void finish_record(example::experiment_record& rec, const std::vector<condition>& cs, Sys& sys,
                   std::vector<double> train_colour = {}) {
  for (std::size_t i = 0; i < cs.size(); ++i) {
    const auto& c = cs[i];
    report::condition_result r{rec.name, c.name, c.seen, c.base_acc, std::nullopt, report::summarize(c.generated)};
    if (!c.trained.empty()) r.trained = report::summarize(c.trained);
    if (i < rec.control.size()) r.control_mean = rec.control[i];
    rec.results.push_back(r);
    rec.short_names.push_back(c.name.size() > 14 ? c.name.substr(0, 12) + ".." : c.name);
  }
  rec.ae_loss = sys.autoencoder_trainer()->history();
  rec.dm_loss = sys.diffusion_trainer()->history();
  const auto& z = sys.latents();
  rec.latent_dim = z.size() / z.dim(0);
  rec.train_latents.assign(z.data(), z.data() + z.size());
  rec.train_colour = std::move(train_colour);
}

// Condition i's checkpoints [K * n] and their accuracies [K], computed on rank `owner`, on every rank.
inline void share_checkpoints(train::communicator& comm, std::size_t owner, std::size_t n, std::vector<float>& checkpoints,
                              std::vector<double>& accuracies) {
  std::vector<double> k{double(accuracies.size())};
  comm.broadcast(std::span<double>(k), owner);
  checkpoints.resize(std::size_t(k[0]) * n);
  accuracies.resize(std::size_t(k[0]));
  comm.broadcast(std::span<float>(checkpoints), owner);
  comm.broadcast(std::span<double>(accuracies), owner);
}

// The MLP base: pre-trained on every run (seconds). Returns its clean test accuracy.
template <std::size_t Rank, class Alpha, std::size_t Hidden>
double pretrain_base_model(models::lora_mlp<Rank, Alpha, Hidden>& base, const data::labelled_images& train,
                           const data::labelled_images& test, const flags& f) {
  std::cout << "pre-training the base MLP 784-" << Hidden << "-10 on " << train.size() << " images\n";
  return train::pretrain_base(base, train, test,
                              {.epochs = f.pretrain_epochs, .lr = 2e-3, .seed = f.seed, .log_every = 0, .log = &std::cout})
      .test_accuracy;
}

// The ViT base: pre-trained once and kept as a Hugging Face folder in <out>/base (config.json +
// model.safetensors, what tools/pytorch_check.py and transformers load), re-used while its settings match.
inline double pretrain_base_model(example_vit_model& base, const data::labelled_images& train,
                                  const data::labelled_images& test, const flags& f) {
  constexpr double lr = 2e-3, warmup = 0.05;
  const nlohmann::json settings = {{"pretrain",
                                    {{"epochs", f.pretrain_epochs}, {"lr", lr}, {"warmup_ratio", warmup},
                                     {"seed", f.seed}, {"train_images", train.size()}, {"data", f.data.string()}}}};
  const fs::path dir = f.out / "base";
  std::string why;
  if (models::load_hf_vit(dir, base.base(), settings, &why)) {
    std::cout << "the pre-trained ViT base: " << dir.string() << " (its settings match this run's)\n";
    return base.accuracy(test.images, test.labels);
  }
  std::cout << "pre-training the ViT base (" << why << ") on " << train.size() << " images\n";
  const double acc = train::pretrain_base(base, train, test,
                                          {.epochs = f.pretrain_epochs, .lr = lr, .warmup_ratio = warmup,
                                           .seed = f.seed, .log_every = 0, .log = &std::cout})
                         .test_accuracy;
  if (f.writes()) {
    models::save_hf_vit(dir, base.base(), settings);
    std::cout << "  wrote " << dir.string() << " (config.json, model.safetensors)\n";
  }
  return acc;
}

// The whole program over the base model type Model (models::lora_mlp or example_vit_model); make() builds one
// from the seed (its base weights are then copied from the pre-trained one).
template <class Model, class Dev>
int run(const flags& f, const std::function<std::unique_ptr<Model>()>& make) {
  using pdiff_ae_t = models::pdiff_autoencoder<example_ae, float, Dev>;
  using mlp_denoiser_t = models::mlp_denoiser<example_mlp_denoiser, models::sinusoidal<>, float, Dev>;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
  example::cond_pdiff_report rep(f.out);
  nlohmann::json meta({{"experiments", f.experiments}, {"base", f.base}, {"base_model", f.base_model}, {"lora", f.lora}, {"seed", f.seed}, {"train_images", f.train_images},
                {"test_images", f.test_images}, {"checkpoints", f.checkpoints}, {"generations", f.generations},
                {"ae_steps", f.ae_steps}, {"diffusion_steps", f.diffusion_steps}, {"batch", f.batch}, {"ae_batch", f.ae_batch}, {"ae_lr", f.ae_lr},
                {"ddim_steps", f.ddim_steps}, {"ema", f.ema}, {"normalise", f.normalise}, {"denoiser", f.denoiser}, {"autoencoder", f.autoencoder}, {"style_encoder", f.style_encoder}, {"ae_skip", f.ae_skip}, {"ae_noise_mean", f.ae_noise_mean},
                {"interp_values", f.interp_values}, {"interp_heldout", f.interp_heldout}, {"quick", f.quick}});
  rep.set_base_name(f.base_model);
  std::cout << std::setprecision(4);

  // ---- data and the frozen base ----
  std::cout << "loading Fashion-MNIST from " << f.data << "\n";
  const auto train_split = data::load_fashion_mnist(f.data, "train", f.train_images);
  const auto test_split = data::load_fashion_mnist(f.data, "t10k", f.test_images);
  const auto refs = data::load_fashion_mnist(f.data, "t10k", 10000);  // style-image references: the tail
  data::fashion_mnist_split style_refs;
  style_refs.count = style_images_per_condition;
  style_refs.images.assign(refs.images.end() - style_images_per_condition * 784, refs.images.end());

  const std::unique_ptr<Model> base_model = make();
  Model& base = *base_model;
  {
    const auto clean_train = data::make_split(train_split, data::task{}), clean_test = data::make_split(test_split, data::task{});
    const double acc = pretrain_base_model(base, clean_train, clean_test, f);
    if (f.comm) train::broadcast_values(*f.comm, base.parameters());  // every rank fine-tunes rank 0's base
    std::cout << "  base accuracy on clean test images: " << 100 * acc << "%\n";
    rep.set_base_accuracy(100 * acc);
  }
  // A model with the pre-trained base (and the LoRA of make(); callers load or reset it).
  auto fresh = [&] {
    std::unique_ptr<Model> m = make();
    m->copy_base_from(base);
    return m;
  };
  const train::finetune_config ft{.epochs = f.finetune_epochs, .lr = 3e-3, .seed = f.seed + 1,
                                 .collect_last = f.checkpoints, .log_every = 0};

  // Fine-tunes a LoRA per seen condition, collecting its last K checkpoints; records accuracies. Under mpirun
  // condition i is fine-tuned by rank i % K and its checkpoints and accuracies are then shared with every rank.
  auto collect = [&](std::vector<condition>& cs, data::lora_collection& coll) {
    const std::unique_ptr<Model> probe = fresh();  // evaluates each checkpoint
    const std::size_t ranks = f.comm ? f.comm->size() : 1, rank = f.comm ? f.comm->rank() : 0;
    std::vector<std::vector<float>> checkpoints(cs.size());  // [K * n] of each condition, on its rank
    for (std::size_t i = 0; i < cs.size(); ++i) {
      auto& c = cs[i];
      c.test = data::make_split(test_split, c.task);
      const std::unique_ptr<Model> mp = fresh();
      Model& m = *mp;
      m.set_mode(models::lora_mode::finetune);
      m.reset_lora(f.seed + 7);
      c.base_acc = accuracy_pct(m, c.test);  // B = 0: exactly the base
      if (!c.seen || i % ranks != rank) continue;
      const auto train = data::make_split(train_split, c.task);
      auto cfg = ft;
      cfg.on_checkpoint = [&](std::size_t, const lora::adapter& a) {
        const auto flat = coll.layout().flatten(a);
        checkpoints[i].insert(checkpoints[i].end(), flat.begin(), flat.end());
        probe->load_adapter(a);
        c.trained.push_back(accuracy_pct(*probe, c.test));
      };
      train::finetune_lora(m, train, data::labelled_images{}, cfg);
    }
    for (std::size_t i = 0; i < cs.size(); ++i) {
      auto& c = cs[i];
      if (!c.seen) continue;
      if (f.comm) share_checkpoints(*f.comm, i % ranks, coll.layout().size(), checkpoints[i], c.trained);
      const std::size_t id = coll.add_condition(c.name, c.row), n = coll.layout().size();
      for (std::size_t k = 0; k < c.trained.size(); ++k)
        coll.append(id, std::span<const float>(checkpoints[i]).subspan(k * n, n));
      std::cout << "  LoRA for " << c.name << ": base " << c.base_acc << "% -> trained best "
                << example::best(c.trained) << "%, mean " << example::mean(c.trained) << "% over "
                << c.trained.size() << " checkpoints  [" << seconds() << " s]\n";
    }
  };
  const lora::adapter base_adapter = base.adapter();
  const data::lora_layout layout(base_adapter);
  std::cout << "LoRA rank " << base_adapter.rank << ", alpha " << base_adapter.alpha << " on " << base_adapter.size()
            << " projections: " << layout.size() << " parameters per adapter\n";
  meta["n_params"] = layout.size();
  rep.set_meta(meta);

  // The statistics a condition's vectors are z-scored with (SPEC.md step 3: its own; --normalise pooled: those
  // of all conditions together, so that the generated vector, not its de-normalisation, says which condition).
  const bool pooled = f.normalise == "pooled";
  auto stats_of = [&](const data::lora_collection& coll, std::size_t c) -> const data::zscore_stats& {
    return pooled ? coll.pooled_statistics() : coll.statistics(c);
  };
  // The z-scored vectors of a collection [M, n] and the condition row of each [M, D_in].
  auto training_matrix = [&](const data::lora_collection& coll, std::vector<float>& x, std::vector<float>& rows) {
    for (std::size_t c = 0; c < coll.condition_count(); ++c) {
      const auto z = stats_of(coll, c).normalise(coll.checkpoints(c));
      x.insert(x.end(), z.begin(), z.end());
      for (std::size_t k = 0; k < coll.checkpoint_count(c); ++k)
        rows.insert(rows.end(), coll.features(c).begin(), coll.features(c).end());
    }
  };
  const train::train_options ae_opt{.steps = f.ae_steps, .batch_size = f.ae_batch, .adamw = {.lr = f.ae_lr, .weight_decay = 2e-6},
                                    .schedule = train::lr_schedule::cosine, .warmup_steps = f.ae_steps / 20,
                                    .seed = f.seed + 11, .log = &std::cout, .log_every = f.ae_steps / 5, .comm = f.comm};
  const train::train_options dm_opt{.steps = f.diffusion_steps, .batch_size = f.batch, .adamw = {.lr = 1e-3, .weight_decay = 2e-6},
                                    .schedule = train::lr_schedule::cosine, .warmup_steps = f.diffusion_steps / 20,
                                    .ema_decay = f.ema, .ema_warmup = true, .seed = f.seed + 12, .log = &std::cout,
                                    .log_every = f.diffusion_steps / 5, .comm = f.comm};

  // Stages 4-8 of the tasks and styles experiments on their collection: train the autoencoder and the
  // diffusion, generate N LoRAs per condition, de-normalise, evaluate, and add the experiment to the report.
  // The autoencoder alone is measured too: each condition's best trained checkpoint through D(E(.)), so that a
  // shortfall of the generated LoRAs can be told apart from the autoencoder's.
  auto train_generate_report = [&](auto& sys, auto& ae, const data::lora_collection& coll, std::vector<condition>& cs,
                                   const std::vector<float>& x, const std::vector<float>& rows, const char* name) {
    const std::size_t m = x.size() / layout.size(), n = layout.size();
    std::cout << "autoencoder on " << m << " vectors of " << n << " -> latent " << ae.latent_shape() << "\n";
    const double ae_mse = sys.train_autoencoder(const_view<float>(x.data(), {m, n}), ae_opt);
    std::cout << "  reconstruction MSE (normalised units) " << ae_mse << "  [" << seconds() << " s]\n";
    const std::unique_ptr<Model> eval_model = fresh();
    Model& eval = *eval_model;
    std::ostringstream round_trip;
    round_trip << "Autoencoder alone (each condition's best trained checkpoint through D(E(.))):";
    std::cout << "  autoencoder alone, best checkpoint through D(E(.)):";
    for (const auto& c : cs) {
      const std::size_t ci = coll.find(c.name);
      const std::size_t k = std::size_t(std::max_element(c.trained.begin(), c.trained.end()) - c.trained.begin());
      const auto z = stats_of(coll, ci).normalise(coll.checkpoint(ci, k));
      eval.load_adapter(layout.unflatten(stats_of(coll, ci).denormalise(through_autoencoder(ae, z))));
      const double acc = accuracy_pct(eval, c.test);
      std::cout << " " << acc;
      round_trip << (&c == &cs.front() ? " " : ", ") << c.name << " " << acc;
    }
    std::cout << "\n";
    sys.train_diffusion(const_view<float>(rows.data(), {m, rows.size() / m}), dm_opt);
    const std::string by_t = loss_by_timestep_line(sys, const_view<float>(rows.data(), {m, rows.size() / m}), f.seed + 12);
    std::cout << "  " << by_t << "\n";
    std::cout << "generating " << f.generations << " LoRAs per condition  [" << seconds() << " s]\n";
    example::experiment_record rec{name};
    generate_and_evaluate(sys, eval, layout, cs,
                          [&](const condition& c, std::span<const float> v) { return stats_of(coll, coll.find(c.name)).denormalise(v); },
                          f, f.out, rec);
    finish_record(rec, cs, sys);
    rec.notes += (rec.notes.empty() ? "" : "\n\n") + round_trip.str() + ".";
    rec.notes += "\n\n" + by_t + ".";
    rep.add(std::move(rec));
  };
  // The appendix's autoencoder (BatchNorm, Tanh-bounded latent), as the interpolation uses it.
  auto make_style_ae = [&](std::uint64_t seed) {
    return models::style_autoencoder<example_style_ae<Model>, float, Dev>(
        layout.size(), seed, {.input_noise = 0.001, .latent_noise = 0.1, .clamp_latent = true, .tanh_latent = true, .linear_skip = f.ae_skip == "on",
                         .noise_mean_at_eval = f.ae_noise_mean == "on"});
  };
  // The autoencoder --autoencoder names, built from `seed` and handed to `then(ae)` (tasks and styles).
  auto with_autoencoder = [&](std::uint64_t seed, auto&& then) {
    if (f.autoencoder == "style") {
      auto ae = make_style_ae(seed);
      then(ae);
    } else {
      pdiff_ae_t ae(layout.size(), seed);
      then(ae);
    }
  };

  // ================= 1. tasks: condition by concatenation of a text feature =================
  if (f.experiments.find("tasks") != std::string::npos) {
    std::cout << "\n== experiment 1: tasks (text condition, concatenation) ==\n";
    using lm = data::task::label_map_type;
    const std::vector<std::pair<std::string, lm>> tasks = {
        {"group clothing into tops, bottoms, footwear and bags", {0, 1, 0, 0, 0, 2, 0, 2, 3, 2}},
        {"tell footwear from everything else", {0, 0, 0, 0, 0, 1, 0, 1, 0, 1}},
        {"reverse the order of the ten classes", {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
        {"shift every class label up by one", {1, 2, 3, 4, 5, 6, 7, 8, 9, 0}},
        {"separate warm outerwear from light garments and accessories", {1, 1, 2, 1, 2, 0, 1, 0, 0, 0}},
        {"swap tops with footwear and keep the rest", {5, 1, 7, 3, 9, 0, 6, 2, 8, 4}},
    };
    pipeline::text_condition text(32);
    std::vector<condition> cs;
    for (const auto& [desc, map] : tasks) cs.push_back({desc, true, data::task::relabelled(desc, map), text.encode(desc)});
    data::lora_collection coll(layout);
    collect(cs, coll);

    std::vector<float> x, rows;
    training_matrix(coll, x, rows);
    train::identity_condition<float, Dev> frozen_text;
    auto run = [&](auto& ae, auto& net) {
      pipeline::cond_pdiff sys(ae, net, frozen_text, diffusion::noise_schedule(1000));
      train_generate_report(sys, ae, coll, cs, x, rows, "tasks");
    };
    auto with_denoiser = [&](auto& ae) {
      if (f.denoiser == "mlp") {
        std::cout << "diffusion: MLP denoiser on the flat latent beside the text feature\n";
        mlp_denoiser_t net(ae.latent_shape(), text.dim(), 1000, f.seed + 3);
        run(ae, net);
      } else {
        models::pdiff_unet<example_unet, models::sinusoidal<>, float, Dev> unet(ae.latent_shape(), text.dim(), 1000, f.seed + 3);
        std::cout << "diffusion: U-Net over a sequence of " << unet.sequence_length() << "\n";
        run(ae, unet);
      }
    };
    with_autoencoder(f.seed + 2, with_denoiser);
  }

  // ================= 2. styles: condition by bottom embedding of style images =================
  std::vector<float> theta_a, theta_b;  // two style LoRAs, for experiment 3
  const data::style style_a = data::style::rotate(90), style_b = data::style::hflip();
  if (f.experiments.find("styles") != std::string::npos || f.experiments.find("interp") != std::string::npos) {
    std::cout << "\n== experiment 2: styles (style-image condition) ==\n";
    const std::vector<data::style> styles = {style_a,
                                             style_b,
                                             data::style::rotate(30),
                                             data::style::edges(),
                                             data::style::contrast(0.3),
                                             data::style::blur(1.5),
                                             data::style::noise(0.3, 5),
                                             data::style::rotate(-45)};
    std::vector<condition> cs;
    for (const auto& s : styles) cs.push_back({s.name(), true, data::task::of_style(s), style_row(style_refs, s)});
    data::lora_collection coll(layout);
    collect(cs, coll);
    // theta_1, theta_2 for the interpolation: the best checkpoint of the first two styles
    auto best_of = [&](std::size_t c) {
      const auto& tr = cs[c].trained;
      const std::size_t k = std::size_t(std::max_element(tr.begin(), tr.end()) - tr.begin());
      const auto v = coll.checkpoint(c, k);
      return std::vector<float>(v.begin(), v.end());
    };
    theta_a = best_of(0);
    theta_b = best_of(1);

    if (f.experiments.find("styles") != std::string::npos) {
      std::vector<float> x, rows;
      training_matrix(coll, x, rows);
      auto with_encoder = [&](auto& enc) {
        auto run = [&](auto& ae, auto& net) {
          pipeline::cond_pdiff sys(ae, net, enc, diffusion::noise_schedule(1000));
          train_generate_report(sys, ae, coll, cs, x, rows, "styles");
        };
        auto with_denoiser = [&](auto& ae) {
          if (f.denoiser == "mlp") {
            mlp_denoiser_t net(ae.latent_shape(), enc.feature_dim(), 1000, f.seed + 6);
            run(ae, net);
          } else {
            models::bottom_unet<example_bottom_unet, models::sinusoidal<>, float, Dev> unet(ae.latent_shape(), enc.feature_dim(), 1000, f.seed + 6);
            run(ae, unet);
          }
        };
        with_autoencoder(f.seed + 4, with_denoiser);
      };
      if (f.style_encoder == "pixels") {  // a Linear on the k style images' pixels, as the interpolation uses
        models::vector_projector<float, Dev> enc(style_images_per_condition * 784, 64, f.seed + 5);
        with_encoder(enc);
      } else {
        models::style_image_encoder<example_style_encoder, float, Dev> enc(64, f.seed + 5, {style_images_per_condition, 28, 28});
        with_encoder(enc);
      }
    }
  }

  // ================= 3. interpolation: conditions never seen in training =================
  if (f.experiments.find("interp") != std::string::npos) {
    std::cout << "\n== experiment 3: interpolated styles, held-out l ==\n";
    const std::size_t n = layout.size(), L = f.interp_values;
    auto theta = [&](double l) {
      std::vector<float> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = float((1 - l) * theta_a[i] + l * theta_b[i]);
      return v;
    };
    auto seen_l = [](double l) { return int(std::floor(l * 10)) % 2 == 1; };  // [0.1,0.2) U [0.3,0.4) U ...
    // Training set: every seen l; shared statistics (a single vector per l has no spread of its own).
    std::vector<float> x, rows;
    std::vector<double> ls;
    for (std::size_t i = 0; i < L; ++i) {
      const double l = double(i) / double(L);
      if (!seen_l(l)) continue;
      const auto v = theta(l);
      x.insert(x.end(), v.begin(), v.end());
      const auto r = style_row(style_refs, data::style::interpolate(style_a, style_b, l));
      rows.insert(rows.end(), r.begin(), r.end());
      ls.push_back(l);
    }
    const std::size_t m = ls.size();
    const auto stats = data::zscore_stats::fit(x, n);
    x = stats.normalise(x);

    // Held-out l: evenly spread over the unseen bands; a few seen ones for comparison.
    std::vector<condition> cs;
    std::vector<double> cond_l;
    for (std::size_t k = 0; k < f.interp_heldout; ++k) {
      const double band = double(2 * (k % 5)) / 10.0;  // 0.0, 0.2, 0.4, 0.6, 0.8
      const double l = band + 0.025 + 0.05 * double(k / 5 % 2);
      const auto s = data::style::interpolate(style_a, style_b, l);
      condition c{"l=" + example::fixed(l, 3), false, data::task::of_style(s), style_row(style_refs, s)};
      cs.push_back(std::move(c));
      cond_l.push_back(l);
    }
    for (double l : {0.15, 0.55, 0.95}) {
      const auto s = data::style::interpolate(style_a, style_b, l);
      cs.push_back({"l=" + example::fixed(l, 3), true, data::task::of_style(s), style_row(style_refs, s)});
      cond_l.push_back(l);
    }
    // The reference LoRA at each l is theta(l) itself ("trained" column).
    const std::unique_ptr<Model> eval_model = fresh();
    Model& eval = *eval_model;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      auto& c = cs[i];
      c.test = data::make_split(test_split, c.task);
      eval.reset_lora(f.seed + 7);
      c.base_acc = accuracy_pct(eval, c.test);
      eval.load_adapter(layout.unflatten(theta(cond_l[i])));
      c.trained = {accuracy_pct(eval, c.test)};
    }
    const std::size_t d_in = style_images_per_condition * 784;
    auto ae = make_style_ae(f.seed + 8);
    // The condition: the same k style images, through a jointly trained Linear on their pixels. Not the
    // style-image encoder: its global average pooling keeps little of rot90-versus-hflip (both permute the same
    // pixels), so blends at different l gave nearly one feature and the model generated without regard to l;
    // a blend is linear in l pixel by pixel, which a Linear reads directly.
    models::vector_projector<float, Dev> enc(d_in, 64, f.seed + 9);
    mlp_denoiser_t denoiser(ae.latent_shape(), enc.feature_dim(), 1000, f.seed + 10);
    pipeline::cond_pdiff sys(ae, denoiser, enc, diffusion::noise_schedule(1000));
    std::cout << "autoencoder on " << m << " interpolated vectors -> latent " << ae.latent_shape() << "\n";
    const double ae_mse = sys.train_autoencoder(const_view<float>(x.data(), {m, n}), ae_opt);
    std::cout << "  reconstruction MSE (normalised units) " << ae_mse << ", latents scaled by " << sys.latent_scale()
              << " into [-1, 1]  [" << seconds() << " s]\n";
    sys.train_diffusion(const_view<float>(rows.data(), {m, d_in}), dm_opt);
    std::cout << "generating for " << cs.size() << " values of l  [" << seconds() << " s]\n";
    auto denorm = [&](const condition&, std::span<const float> v) { return stats.denormalise(v); };
    // Where on the line theta(l) each generated LoRA lies: l^ = <v - theta_1, theta_2 - theta_1> / |theta_2 - theta_1|^2,
    // and how far off it, relative to |theta_2 - theta_1|.
    std::vector<std::vector<double>> implied(cs.size()), off_line(cs.size());
    auto locate = [&](std::size_t ci, std::span<const float> v) {
      double dot = 0, len2 = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double d = double(theta_b[i]) - theta_a[i];
        dot += (double(v[i]) - theta_a[i]) * d;
        len2 += d * d;
      }
      const double lh = dot / len2;
      double r2 = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double e = double(v[i]) - ((1 - lh) * theta_a[i] + lh * theta_b[i]);
        r2 += e * e;
      }
      implied[ci].push_back(lh);
      off_line[ci].push_back(std::sqrt(r2 / len2));
    };
    // The autoencoder alone: accuracy of D(E(theta(l))), so a shortfall can be told apart from the diffusion's.
    std::vector<double> round_trip(cs.size());
    for (std::size_t ci = 0; ci < cs.size(); ++ci) {
      eval.load_adapter(layout.unflatten(stats.denormalise(through_autoencoder(ae, stats.normalise(theta(cond_l[ci]))))));
      round_trip[ci] = accuracy_pct(eval, cs[ci].test);
    }
    example::experiment_record rec{"interp"};
    generate_and_evaluate(sys, eval, layout, cs, denorm, f, f.out, rec, locate);
    std::ostringstream notes;
    notes << std::setprecision(3) << "Where the generated LoRAs lie on the line theta(l): implied l^ (mean, min..max), "
          << "distance off the line relative to |theta_2 - theta_1| (mean), and the accuracy of the reference after the "
          << "autoencoder alone, D(E(theta(l))).\n\n| condition | l^ mean | l^ min..max | off line | D(E(theta(l))) |\n"
          << "|---|---|---|---|---|\n";
    for (std::size_t ci = 0; ci < cs.size(); ++ci) {
      const auto& h = implied[ci];
      const auto [lo, hi] = std::minmax_element(h.begin(), h.end());
      std::cout << "  " << cs[ci].name << ": generated at l^ " << example::mean(h) << " (" << *lo << ".." << *hi
                << "), off the line " << example::mean(off_line[ci]) << "; reference through the autoencoder "
                << round_trip[ci] << "\n";
      notes << "| " << cs[ci].name << (cs[ci].seen ? "" : " (held out)") << " | " << example::mean(h) << " | " << *lo
            << ".." << *hi << " | " << example::mean(off_line[ci]) << " | " << round_trip[ci] << " |\n";
    }
    rec.notes = notes.str();
    finish_record(rec, cs, sys, ls);  // latent PCA coloured by l
    for (double l : cond_l) rec.generated_colour.insert(rec.generated_colour.end(), f.generations, l);
    rep.add(std::move(rec));
  }

  if (f.writes()) rep.write();
  std::cout << "\nwrote " << (f.out / "report.md").string() << ", report.json, figures and adapters  [" << seconds()
            << " s]\n";
  return 0;
}

// The whole program on backend Dev (cond_pdiff_fashion.cpp: cpu; cond_pdiff_fashion_cuda.cu: cuda).
// comm: the ranks of an mpirun job (cond_pdiff_fashion.cpp), or nullptr for one process.
template <class Dev>
int fashion_main(int argc, char** argv, train::communicator* comm = nullptr) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are written, also in a log file
  // The ranks other than 0 print nothing (their std::cout goes nowhere until this returns); errors still show.
  struct discard : std::streambuf {
    int overflow(int c) override { return traits_type::not_eof(c); }
  } nowhere;
  struct restore {
    std::streambuf* buf;
    ~restore() { std::cout.rdbuf(buf); }
  } keep{std::cout.rdbuf()};
  if (comm && !comm->is_root()) std::cout.rdbuf(&nowhere);
  flags f;
  f.comm = comm;
  if (comm) std::cout << "data parallel: " << comm->size() << " ranks (" << comm->name() << ")\n";
  try {
    example::flag_parser p("cond_pdiff_fashion", "Cond P-Diff on Fashion-MNIST: tasks, styles and held-out interpolations");
    p.add("--out", f.out, "output folder");
    p.add("--data", f.data, "Fashion-MNIST folder (apt-get install dataset-fashion-mnist)");
    p.add("--experiments", f.experiments, "comma-separated subset of tasks,styles,interp");
    p.add("--base", f.base, "the frozen base: vit (Hugging Face ViT, LoRA on query/value) or mlp (784-64-10, LoRA on fc1/fc2)");
    p.add("--lora", f.lora, "LoRA rank,alpha (vit: any; mlp: 1,8 | 2,8 | 4,16 | 16,32); default 16,32 (vit), 4,16 (mlp)");
    p.add("--seed", f.seed, "seed of everything random");
    p.add("--train-images", f.train_images, "training images per task");
    p.add("--test-images", f.test_images, "test images per task");
    p.add("--pretrain-epochs", f.pretrain_epochs, "base pre-training epochs (the ViT base is kept in <out>/base)");
    p.add("--finetune-epochs", f.finetune_epochs, "LoRA epochs per condition (0: 2 vit, 4 mlp)");
    p.add("--checkpoints", f.checkpoints, "K: LoRA checkpoints collected per condition (last K steps; 0: 32 vit, 64 mlp)");
    p.add("--generations", f.generations, "N: LoRAs generated per condition");
    p.add("--ae-steps", f.ae_steps, "parameter autoencoder training steps (0: 600 vit, 2000 mlp)");
    p.add("--diffusion-steps", f.diffusion_steps, "diffusion training steps (0: 10000, 3000 with --quick)");
    p.add("--batch", f.batch, "batch size of both trainers");
    p.add("--ae-batch", f.ae_batch, "batch size of the autoencoder (0: --batch)");
    p.add("--ae-lr", f.ae_lr, "peak learning rate of the autoencoder (AdamW, cosine)");
    p.add("--ddim-steps", f.ddim_steps, "0: DDPM over 1000 steps; S > 0: DDIM with S steps");
    p.add("--normalise", f.normalise, "z-score statistics in tasks and styles: condition (SPEC, the paper's) or pooled");
    p.add("--ema", f.ema, "EMA decay of the denoiser's weights, 0 for none");
    p.add("--denoiser", f.denoiser, "tasks and styles: unet (the paper's U-Nets) or mlp (models::mlp_denoiser)");
    p.add("--autoencoder", f.autoencoder, "tasks and styles: pdiff (p-diff's, InstanceNorm) or style (the appendix's, BatchNorm)");
    p.add("--style-encoder", f.style_encoder, "styles: image (the style-image encoder) or pixels (a Linear on the images' pixels)");
    p.add("--interp-values", f.interp_values, "values of l in the interpolation experiment");
    p.add("--interp-heldout", f.interp_heldout, "held-out values of l generated for");
    p.add("--ae-skip", f.ae_skip, "style autoencoder: on (its decoder adds Linear(latent -> n) of the latent) or off");
    p.add("--ae-noise-mean", f.ae_noise_mean, "style autoencoder: on (encode / decode read (1-a) x / (1-b) z, the mean of "
          "training's noisy inputs) or off (x / z, as p-diff's code)");
    p.add_switch("--quick", f.quick, "a few-minute run (smaller everything; for CI)");
    if (!p.parse(argc, argv)) return 0;  // --help
    if (f.base != "vit" && f.base != "mlp")
      throw config_error("cond_pdiff_fashion: --base must be vit or mlp (got '" + f.base + "')");
    if (f.lora.empty()) f.lora = f.base == "vit" ? "16,32" : "4,16";
    const bool vit = f.base == "vit";
    if (f.checkpoints == 0) f.checkpoints = vit ? 32 : 64;
    if (f.finetune_epochs == 0) f.finetune_epochs = vit ? 2 : 4;
    if (f.ae_steps == 0) f.ae_steps = vit ? 600 : 2000;
    if (f.ae_batch == 0) f.ae_batch = f.batch;
    if (f.quick) {
      f.train_images = std::min<std::size_t>(f.train_images, 4000);
      f.test_images = std::min<std::size_t>(f.test_images, 1000);
      f.pretrain_epochs = 2;
      f.finetune_epochs = 2;
      f.checkpoints = std::min<std::size_t>(f.checkpoints, 16);
      f.generations = std::min<std::size_t>(f.generations, 4);
      f.ae_steps = std::min<std::size_t>(f.ae_steps, 600);
      if (f.diffusion_steps == 0) f.diffusion_steps = 3000;
      f.interp_values = std::min<std::size_t>(f.interp_values, 200);
      f.interp_heldout = std::min<std::size_t>(f.interp_heldout, 5);
    }
    if (f.normalise != "condition" && f.normalise != "pooled")
      throw config_error("cond_pdiff_fashion: --normalise must be condition or pooled (got '" + f.normalise + "')");
    if (f.denoiser != "unet" && f.denoiser != "mlp")
      throw config_error("cond_pdiff_fashion: --denoiser must be unet or mlp (got '" + f.denoiser + "')");
    if (f.style_encoder != "image" && f.style_encoder != "pixels")
      throw config_error("cond_pdiff_fashion: --style-encoder must be image or pixels (got '" + f.style_encoder + "')");
    if (f.ae_skip != "on" && f.ae_skip != "off")
      throw config_error("cond_pdiff_fashion: --ae-skip must be on or off (got '" + f.ae_skip + "')");
    if (f.ae_noise_mean != "on" && f.ae_noise_mean != "off")
      throw config_error("cond_pdiff_fashion: --ae-noise-mean must be on or off (got '" + f.ae_noise_mean + "')");
    // the bottom U-Net needs them as the MLP does: at 2,500 steps its generated means fell up to 6.9 points short
    if (f.diffusion_steps == 0) f.diffusion_steps = 10000;
    if (f.autoencoder != "pdiff" && f.autoencoder != "style")
      throw config_error("cond_pdiff_fashion: --autoencoder must be pdiff or style (got '" + f.autoencoder + "')");
    if (f.base == "vit") {
      const auto [rank, alpha] = example::parse_rank_alpha(f.lora, "cond_pdiff_fashion: --lora");
      f.base_model = "cpdiff/fashion-mnist-vit-d64x6";
      return run<example_vit_model, Dev>(f, [&] {
        return std::make_unique<example_vit_model>(f.seed, models::peft_lora_config{.rank = rank, .alpha = alpha});
      });
    }
    f.base_model = "cpdiff/fashion-mnist-mlp" + std::to_string(hidden);
    auto mlp = [&]<std::size_t Rank, class Alpha>() {
      using mlp_t = models::lora_mlp<Rank, Alpha, hidden>;
      return run<mlp_t, Dev>(f, [&] { return std::make_unique<mlp_t>(f.seed); });
    };
    if (f.lora == "1,8") return mlp.template operator()<1, std::ratio<8>>();
    if (f.lora == "2,8") return mlp.template operator()<2, std::ratio<8>>();
    if (f.lora == "4,16") return mlp.template operator()<4, std::ratio<16>>();
    if (f.lora == "16,32") return mlp.template operator()<16, std::ratio<32>>();
    throw config_error("cond_pdiff_fashion: --base mlp takes --lora 1,8 2,8 4,16 or 16,32 (got '" + f.lora + "')");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
