#pragma once
// Experiment 3, interpolation: two style LoRAs blended, theta(l) = (1 - l) theta_1 + l theta_2, over --interp-values
// values of l, the condition being images of the style blended at l; trained on l in [0.1, 0.2) U [0.3, 0.4) U
// ... U [0.9, 1.0), generated for values of l never seen (the paper's held-out interpolation).
#include "experiment.hpp"
#include "styles.hpp"

#include <cmath>

namespace fashion {

// The line theta(l) between two LoRAs, and where a vector lies along it.
struct lora_line {
  std::vector<float> a, b;  // theta_1, theta_2 [n]

  std::vector<float> at(double l) const {
    std::vector<float> v(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) v[i] = float((1 - l) * a[i] + l * b[i]);
    return v;
  }
  // l^ = <v - theta_1, theta_2 - theta_1> / |theta_2 - theta_1|^2, and the distance of v from theta(l^)
  // relative to |theta_2 - theta_1|.
  std::pair<double, double> locate(std::span<const float> v) const {
    double dot = 0, len2 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double d = double(b[i]) - a[i];
      dot += (double(v[i]) - a[i]) * d;
      len2 += d * d;
    }
    const double lh = dot / len2;
    double r2 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double e = double(v[i]) - ((1 - lh) * a[i] + lh * b[i]);
      r2 += e * e;
    }
    return {lh, std::sqrt(r2 / len2)};
  }
};

// Seen values of l: [0.1, 0.2) U [0.3, 0.4) U ... U [0.9, 1.0).
inline bool interp_seen(double l) { return int(std::floor(l * 10)) % 2 == 1; }

// The generated conditions: --interp-heldout values of l spread over the unseen bands, then three seen ones.
inline std::vector<double> interp_condition_values(std::size_t heldout) {
  std::vector<double> ls;
  for (std::size_t k = 0; k < heldout; ++k) {
    const double band = double(2 * (k % 5)) / 10.0;  // 0.0, 0.2, 0.4, 0.6, 0.8
    ls.push_back(band + 0.025 + 0.05 * double(k / 5 % 2));
  }
  for (double l : {0.15, 0.55, 0.95}) ls.push_back(l);
  return ls;
}

template <class Model, class Dev>
void run_interp(experiment_context<Model, Dev>& ctx, const lora_line& line) {
  const flags& f = ctx.f;
  std::cout << "\n== experiment 3: interpolated styles, held-out l ==\n";
  const std::size_t n = ctx.layout.size(), d_in = style_images_per_condition * 784;
  const data::style style_a = interp_style_a(), style_b = interp_style_b();
  auto style_at = [&](double l) { return data::style::interpolate(style_a, style_b, l); };

  // Training set: every seen l; shared statistics (a single vector per l has no spread of its own).
  std::vector<float> x, rows;
  std::vector<double> train_l;
  for (std::size_t i = 0; i < f.interp_values; ++i) {
    const double l = double(i) / double(f.interp_values);
    if (!interp_seen(l)) continue;
    const auto v = line.at(l);
    x.insert(x.end(), v.begin(), v.end());
    const auto r = style_row(ctx.style_refs, style_at(l));
    rows.insert(rows.end(), r.begin(), r.end());
    train_l.push_back(l);
  }
  const std::size_t m = train_l.size();
  const auto stats = data::zscore_stats::fit(x, n);
  x = stats.normalise(x);

  // The conditions generated for; the reference LoRA at each l is theta(l) itself (the "trained" column).
  const std::vector<double> cond_l = interp_condition_values(f.interp_heldout);
  std::vector<condition> cs;
  const std::unique_ptr<Model> eval = ctx.fresh();
  for (std::size_t i = 0; i < cond_l.size(); ++i) {
    const double l = cond_l[i];
    condition c{"l=" + example::fixed(l, 3), i >= f.interp_heldout, data::task::of_style(style_at(l)),
                style_row(ctx.style_refs, style_at(l))};
    c.test = data::make_split(ctx.test_split, c.task);
    eval->reset_lora(f.seed + 7);
    c.base_acc = accuracy_pct(*eval, c.test);
    eval->load_adapter(ctx.layout.unflatten(line.at(l)));
    c.trained = {accuracy_pct(*eval, c.test)};
    cs.push_back(std::move(c));
  }

  // The condition: the same k style images, through a jointly trained Linear on their pixels. Not the
  // style-image encoder: its global average pooling keeps little of rot90-versus-hflip (both permute the same
  // pixels), so blends at different l gave nearly one feature and the model generated without regard to l;
  // a blend is linear in l pixel by pixel, which a Linear reads directly.
  auto ae = ctx.make_style_ae(f.seed + 8);
  models::vector_projector<float, Dev> enc(d_in, 64, f.seed + 9);
  mlp_denoiser<Dev> denoiser(ae.latent_shape(), enc.feature_dim(), ctx.timesteps, f.seed + 10);
  pipeline::cond_pdiff sys(ae, denoiser, enc, diffusion::noise_schedule(ctx.timesteps));
  std::cout << "autoencoder on " << m << " interpolated vectors -> latent " << ae.latent_shape() << "\n";
  const double ae_mse = sys.train_autoencoder(const_view<float>(x.data(), {m, n}), ctx.ae_options);
  std::cout << "  reconstruction MSE (normalised units) " << ae_mse << ", latents scaled by " << sys.latent_scale()
            << " into [-1, 1]  [" << ctx.seconds() << " s]\n";
  sys.train_diffusion(const_view<float>(rows.data(), {m, d_in}), ctx.dm_options);
  std::cout << "generating for " << cs.size() << " values of l  [" << ctx.seconds() << " s]\n";

  // Where on the line each generated LoRA lies, and the reference through the autoencoder alone, D(E(theta(l))),
  // so that a shortfall can be told apart from the diffusion's.
  std::vector<std::vector<double>> implied(cs.size()), off_line(cs.size());
  auto locate = [&](std::size_t ci, std::span<const float> v) {
    const auto [lh, off] = line.locate(v);
    implied[ci].push_back(lh);
    off_line[ci].push_back(off);
  };
  std::vector<double> round_trip(cs.size());
  for (std::size_t ci = 0; ci < cs.size(); ++ci) {
    eval->load_adapter(ctx.layout.unflatten(stats.denormalise(through_autoencoder(ae, stats.normalise(line.at(cond_l[ci]))))));
    round_trip[ci] = accuracy_pct(*eval, cs[ci].test);
  }
  example::experiment_record rec{"interp"};
  ctx.generate_and_evaluate(sys, *eval, cs, [&](const condition&, std::span<const float> v) { return stats.denormalise(v); },
                            rec, locate);
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
  finish_record(rec, cs, sys, train_l);  // latent PCA coloured by l
  for (double l : cond_l) rec.generated_colour.insert(rec.generated_colour.end(), f.generations, l);
  ctx.report.add(std::move(rec));
}

}  // namespace fashion
