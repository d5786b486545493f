#pragma once
// The example's settings: the flags, their defaults per base, and --quick.
#include <cpdiff/core/error.hpp>
#include <cpdiff/data/fashion_mnist.hpp>
#include <cpdiff/train/communicator.hpp>

#include "flag_parser.hpp"
#include "models.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace fashion {

struct flags {
  std::filesystem::path out = "out/cond_pdiff";
  std::filesystem::path data = cpdiff::data::default_fashion_mnist_dir;
  std::string experiments = "tasks,styles,interp";
  std::string base = "vit";   // the frozen base the LoRAs adapt: vit (Hugging Face ViT, LoRA on query / value),
                              // vit-paper (the same at width 192: n = 73,728) or mlp (784-64-10, LoRA on fc1 / fc2)
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
  cpdiff::train::communicator* comm = nullptr;

  bool writes() const { return comm == nullptr || comm->is_root(); }
  bool runs(const char* experiment) const { return experiments.find(experiment) != std::string::npos; }
};

// The flags of argv with their defaults filled in; nullopt after --help. Throws config_error on bad input.
inline std::optional<flags> parse_flags(int argc, char** argv) {
  flags f;
  example::flag_parser p("cond_pdiff_fashion", "Cond P-Diff on Fashion-MNIST: tasks, styles and held-out interpolations");
  p.add("--out", f.out, "output folder");
  p.add("--data", f.data, "Fashion-MNIST folder (apt-get install dataset-fashion-mnist)");
  p.add("--experiments", f.experiments, "comma-separated subset of tasks,styles,interp");
  p.add_choice("--base", f.base, {"vit", "vit-paper", "mlp"},
               "the frozen base: vit (Hugging Face ViT, width 64, LoRA on query/value), vit-paper (width 192: "
               "n = 73,728 at 16,32) or mlp (784-64-10, LoRA on fc1/fc2)");
  p.add("--lora", f.lora, "LoRA rank,alpha (vit, vit-paper: any; mlp: 1,8 | 2,8 | 4,16 | 16,32); default 16,32 (vit, "
        "vit-paper), 4,16 (mlp)");
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
  p.add_choice("--normalise", f.normalise, {"condition", "pooled"},
               "z-score statistics in tasks and styles: condition (SPEC, the paper's) or pooled");
  p.add("--ema", f.ema, "EMA decay of the denoiser's weights, 0 for none");
  p.add_choice("--denoiser", f.denoiser, {"unet", "mlp"},
               "tasks and styles: unet (the paper's U-Nets) or mlp (models::mlp_denoiser)");
  p.add_choice("--autoencoder", f.autoencoder, {"pdiff", "style"},
               "tasks and styles: pdiff (p-diff's, InstanceNorm) or style (the appendix's, BatchNorm)");
  p.add_choice("--style-encoder", f.style_encoder, {"image", "pixels"},
               "styles: image (the style-image encoder) or pixels (a Linear on the images' pixels)");
  p.add("--interp-values", f.interp_values, "values of l in the interpolation experiment");
  p.add("--interp-heldout", f.interp_heldout, "held-out values of l generated for");
  p.add_choice("--ae-skip", f.ae_skip, {"on", "off"},
               "style autoencoder: on (its decoder adds Linear(latent -> n) of the latent) or off");
  p.add_choice("--ae-noise-mean", f.ae_noise_mean, {"on", "off"},
               "style autoencoder: on (encode / decode read (1-a) x / (1-b) z, the mean of training's noisy inputs) "
               "or off (x / z, as p-diff's code)");
  p.add_switch("--quick", f.quick, "a few-minute run (smaller everything; for CI)");
  if (!p.parse(argc, argv)) return std::nullopt;  // --help

  const bool vit = f.base != "mlp";  // vit and vit-paper share their defaults
  if (f.lora.empty()) f.lora = vit ? "16,32" : "4,16";
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
  // the bottom U-Net needs them as the MLP does: at 2,500 steps its generated means fell up to 6.9 points short
  if (f.diffusion_steps == 0) f.diffusion_steps = 10000;
  f.base_model = f.base == "vit"         ? "cpdiff/fashion-mnist-vit-d64x6"
                 : f.base == "vit-paper" ? "cpdiff/fashion-mnist-vit-d192x6"
                                         : "cpdiff/fashion-mnist-mlp" + std::to_string(mlp_hidden);
  return f;
}

}  // namespace fashion
