#pragma once
// The example's compile-time sizes: the frozen bases the LoRAs adapt, and the parameter autoencoders,
// denoisers and condition encoders that learn to generate them.
#include <cpdiff/cpdiff.hpp>  // the CPU backend and the library
#include <cpdiff/models/bottom_unet.hpp>
#include <cpdiff/models/lora_mlp.hpp>
#include <cpdiff/models/mlp_denoiser.hpp>
#include <cpdiff/models/pdiff_autoencoder.hpp>
#include <cpdiff/models/pdiff_unet.hpp>
#include <cpdiff/models/peft_classifier.hpp>
#include <cpdiff/models/style_autoencoder.hpp>
#include <cpdiff/models/style_image_encoder.hpp>
#include <cpdiff/models/vit.hpp>
#include <cpdiff/pipeline/lora_generator.hpp>

#include <array>
#include <cstddef>
#include <ratio>
#include <type_traits>

namespace fashion {

// The transformer base (--base vit): a ViT laid out as Hugging Face's ViTForImageClassification, 28x28 images in 16
// patches of 7x7, width 64, 6 layers of 4 heads, MLP 128 (218 K parameters). LoRA on query and value at
// --lora 16,32: 12 projections x 16 x (64 + 64) = 24,576 parameters per adapter.
struct vit_config {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 64, depth = 6, heads = 4, mlp_dim = 128,
                               classes = 10;
};
using vit_model = cpdiff::models::peft_classifier<cpdiff::models::vit<vit_config>>;
// The paper-scale transformer base (--base vit-paper): ViT-Tiny's width and heads (192, 3 heads of 64) at 6 layers,
// MLP 384 (the example's ratio of 2; 1.9 M parameters). LoRA at --lora 16,32 on query and value:
// 12 projections x 16 x (192 + 192) = 73,728 parameters per adapter, SPEC.md's medium case.
struct vit_paper_config {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 192, depth = 6, heads = 3, mlp_dim = 384,
                               classes = 10;
};
using vit_paper_model = cpdiff::models::peft_classifier<cpdiff::models::vit<vit_paper_config>>;
template <class Model>
constexpr bool is_vit = std::is_same_v<Model, vit_model> || std::is_same_v<Model, vit_paper_model>;
// The MLP base (--base mlp): 784 -> 64 -> 10, LoRA on fc1 and fc2 (n = 3,688 at rank 4).
constexpr std::size_t mlp_hidden = 64;
template <std::size_t Rank, class Alpha>
using mlp_model = cpdiff::models::lora_mlp<Rank, Alpha, mlp_hidden>;
// --lora on the MLP base: the paper's four (rank, alpha) pairs, one type each.
using mlp_r1 = mlp_model<1, std::ratio<8>>;
using mlp_r2 = mlp_model<2, std::ratio<8>>;
using mlp_r4 = mlp_model<4, std::ratio<16>>;
using mlp_r16 = mlp_model<16, std::ratio<32>>;

// p-diff's parameter autoencoder (--autoencoder pdiff): its "small" layout (fold 3, kernel 3), 4 latent channels.
struct pdiff_ae_config {
  static constexpr std::size_t fold = 3, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{4, 4, 4, 4}, dec{4, 64, 64, 8};
};
// The default autoencoder: the appendix's (style) family, BatchNorm and a Tanh-bounded Linear latent. Not the
// p-diff AE: InstanceNorm divides every sample by its own scale, and pooled z-scored conditions differ mainly in
// scale and offset (in the interpolation theta(l) is one direction times a scalar, so a p-diff encoder sees only
// the sign of (l - mean l) and its latents fall into two clusters).
// The MLP base's (n = 3,688): the same sizes as `cpdiff fit` trains (pipeline::lora_generator), one definition.
// The ViT bases' (n = 24,576 and 73,728): the same channels at stride 4 (models::style_vit), a third of the
// multiply-adds.
template <class Model>
using style_ae_config =
    std::conditional_t<is_vit<Model>, cpdiff::models::style_vit, cpdiff::pipeline::generator_autoencoder>;
// The default denoiser (and the interpolation's): an MLP on the flat latent with the condition feature beside it.
// The paper's U-Nets (--denoiser unet: tasks and styles, on either autoencoder) take the sinusoidal timestep
// embedding: with p-diff's learned table they do not learn small t (models/time_embedding.hpp, README).
using mlp_denoiser_config = cpdiff::pipeline::generator_denoiser;
// The concat-condition U-Net (--denoiser unet, tasks): p-diff's layout at a quarter of its width (64..512 -> 16..128).
struct concat_unet_config {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 64, 128};
  static constexpr std::size_t kernel = 3;
};
// The bottom-embedding U-Net (--denoiser unet, styles) and the appendix's style-image projector
// (--style-encoder image), small.
struct bottom_unet_config {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 32, 16};
  static constexpr std::size_t kernel = 3, groups = 8;
};
struct style_encoder_config {
  static constexpr std::size_t in_channels = 1, c1 = 16, c2 = 32, kernel = 3;
};
constexpr std::size_t style_images_per_condition = 5;

template <class Model, class Dev>
using style_ae = cpdiff::models::style_autoencoder<style_ae_config<Model>, float, Dev>;
template <class Dev>
using pdiff_ae = cpdiff::models::pdiff_autoencoder<pdiff_ae_config, float, Dev>;
template <class Dev>
using mlp_denoiser = cpdiff::models::mlp_denoiser<mlp_denoiser_config, cpdiff::models::sinusoidal<>, float, Dev>;
template <class Dev>
using concat_unet = cpdiff::models::pdiff_unet<concat_unet_config, cpdiff::models::sinusoidal<>, float, Dev>;
template <class Dev>
using bottom_unet = cpdiff::models::bottom_unet<bottom_unet_config, cpdiff::models::sinusoidal<>, float, Dev>;
template <class Dev>
using style_image_encoder = cpdiff::models::style_image_encoder<style_encoder_config, float, Dev>;

}  // namespace fashion
