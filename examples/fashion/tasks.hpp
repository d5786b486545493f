#pragma once
// Experiment 1, tasks: six classification tasks (label groupings and relabellings) on the frozen base, a LoRA
// each; the condition is the task's written description through a frozen text encoder, concatenated with the
// latent (SPEC.md: the paper's concatenation conditioning for tasks).
#include <cpdiff/pipeline/text_condition.hpp>
#include <cpdiff/train/conditioning.hpp>

#include "experiment.hpp"

namespace fashion {

template <class Model, class Dev>
void run_tasks(experiment_context<Model, Dev>& ctx) {
  const flags& f = ctx.f;
  std::cout << "\n== experiment 1: tasks (text condition, concatenation) ==\n";
  using label_map = data::task::label_map_type;
  const std::vector<std::pair<std::string, label_map>> tasks = {
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
  data::lora_collection coll(ctx.layout);
  ctx.collect(cs, coll);

  train::identity_condition<float, Dev> frozen_text;  // the features are the condition as they are
  ctx.with_autoencoder(f.seed + 2, [&](auto& ae) {
    auto run = [&](auto& net) {
      pipeline::cond_pdiff sys(ae, net, frozen_text, diffusion::noise_schedule(ctx.timesteps));
      ctx.train_generate_report(sys, ae, coll, cs, "tasks");
    };
    if (f.denoiser == "mlp") {
      std::cout << "diffusion: MLP denoiser on the flat latent beside the text feature\n";
      mlp_denoiser<Dev> net(ae.latent_shape(), text.dim(), ctx.timesteps, f.seed + 3);
      run(net);
    } else {
      concat_unet<Dev> unet(ae.latent_shape(), text.dim(), ctx.timesteps, f.seed + 3);
      std::cout << "diffusion: U-Net over a sequence of " << unet.sequence_length() << "\n";
      run(unet);
    }
  });
}

}  // namespace fashion
