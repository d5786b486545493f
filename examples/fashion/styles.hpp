#pragma once
// Experiment 2, styles: eight image styles (rotated, flipped, blurred, edges, ...), a LoRA each; the condition
// is a handful of images in the style, through a condition encoder trained with the denoiser (a Linear on their
// pixels, or the appendix's style-image encoder), given to the U-Net at its bottom (SPEC.md).
#include "experiment.hpp"

namespace fashion {

// The styles' conditions and their collected LoRA checkpoints (stage 1), which the interpolation also reads.
struct style_collection {
  std::vector<condition> conditions;
  data::lora_collection checkpoints;
  // The best trained checkpoint of condition c [n].
  std::vector<float> best(std::size_t c) const {
    const auto v = checkpoints.checkpoint(c, conditions.at(c).best_checkpoint());
    return {v.begin(), v.end()};
  }
};

// The two styles the interpolation blends: theta_1 and theta_2 are their best LoRAs.
inline data::style interp_style_a() { return data::style::rotate(90); }
inline data::style interp_style_b() { return data::style::hflip(); }

template <class Model, class Dev>
style_collection collect_styles(const experiment_context<Model, Dev>& ctx) {
  std::cout << "\n== experiment 2: styles (style-image condition) ==\n";
  const std::vector<data::style> styles = {interp_style_a(),         interp_style_b(),       data::style::rotate(30),
                                           data::style::edges(),     data::style::contrast(0.3), data::style::blur(1.5),
                                           data::style::noise(0.3, 5), data::style::rotate(-45)};
  style_collection sc{{}, data::lora_collection(ctx.layout)};
  for (const auto& s : styles)
    sc.conditions.push_back({s.name(), true, data::task::of_style(s), style_row(ctx.style_refs, s)});
  ctx.collect(sc.conditions, sc.checkpoints);
  return sc;
}

template <class Model, class Dev>
void run_styles(experiment_context<Model, Dev>& ctx, style_collection& sc) {
  const flags& f = ctx.f;
  auto with_encoder = [&](auto& enc) {
    ctx.with_autoencoder(f.seed + 4, [&](auto& ae) {
      auto run = [&](auto& net) {
        pipeline::cond_pdiff sys(ae, net, enc, diffusion::noise_schedule(ctx.timesteps));
        ctx.train_generate_report(sys, ae, sc.checkpoints, sc.conditions, "styles");
      };
      if (f.denoiser == "mlp") {
        mlp_denoiser<Dev> net(ae.latent_shape(), enc.feature_dim(), ctx.timesteps, f.seed + 6);
        run(net);
      } else {
        bottom_unet<Dev> unet(ae.latent_shape(), enc.feature_dim(), ctx.timesteps, f.seed + 6);
        run(unet);
      }
    });
  };
  if (f.style_encoder == "pixels") {  // a Linear on the k style images' pixels, as the interpolation uses
    models::vector_projector<float, Dev> enc(style_images_per_condition * 784, 64, f.seed + 5);
    with_encoder(enc);
  } else {
    style_image_encoder<Dev> enc(64, f.seed + 5, {style_images_per_condition, 28, 28});
    with_encoder(enc);
  }
}

}  // namespace fashion
