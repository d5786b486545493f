#pragma once
// style_autoencoder<Config>: the appendix's (style) parameter autoencoder (SPEC.md "Appendix (style) AE"): a
// strided 1-D conv stack, flattened at the bottom into a Linear latent; the decoder mirrors it.
//
//   x [N, n] -> [N, 1, Lp], zero-padded to Lp = ceil(n / s^D) s^D          (D = channels.size(), s = stride)
//   encoder level i:  Conv(c_{i-1} -> c_i, k, stride s, pad k/2) -> BatchNorm -> LeakyReLU(0.01)   (c_{-1} = 1)
//                     length Lp / s^i -> Lp / s^(i+1)
//   bottom:           flatten [N, c_{D-1} m] (m = Lp / s^D) -> Linear -> z [N, latent]
//   decoder:          Linear(latent -> c_{D-1} m) -> unflatten [N, c_{D-1}, m]
//   decoder level j:  ConvT(c_i -> c_{i-1}, k, stride s, pad k/2, output pad s-1) -> BatchNorm -> ELU   (i = D-1-j;
//                     the last level keeps c_0), multiplying the length by s back to Lp
//   output:           Conv(c_0 -> 1, k, stride 1, pad k/2), no norm or activation; crop to [N, n]
// With an odd k these pads divide / multiply the length by s exactly, so only Lp needs to be a multiple of s^D.
// The stride s is the config's optional member `stride` (2 when absent, the appendix's and the newer p-diff's).
// A larger s makes a long vector cheap: every level's length, and so its cost, falls by s / 2 per level
// (models::style_vit below: n = 24,576 in about a third of the stride-2 stack's multiply-adds).
//
// Why BatchNorm (the newer p-diff's choice for such a stack) and not p-diff's InstanceNorm:
//  - InstanceNorm removes each sample's per-channel mean and scale at every level; in a parameter
//    autoencoder that is the very information (the magnitude of the LoRA weights) the latent must carry.
//  - InstanceNorm needs more than one position per channel; this stack ends at length m, which is 1 for
//    n <= 2^D (BatchNorm normalises over N and the length together).
//  The price is a train/eval mode. It is set for you: forward_train() normalises with batch statistics (and
//  updates the running ones), encode() / decode() with the running statistics, so a latent depends only on
//  its own sample and generation may decode one latent at a time.
//
// Training adds noise as pdiff_autoencoder does (SPEC.md step 4): x~ = (1-a) x + a eps, z~ = (1-b) z + b eps'.
// Evaluation (option `noise_mean_at_eval`, on by default) feeds the networks the mean of those inputs: encode()
// reads (1-a) x and decode() reads (1-b) z. The decoder never saw z itself in training, only z~, whose mean is
// (1-b) z; fed z (p-diff's code does), its Linears and BatchNorms see an input 1 / (1-b) = 1.11x too large.
// Measured on the example's ViT LoRAs (n = 24,576, b = 0.1): reconstruction MSE 0.0143 with z, 9.0e-5 with
// (1-b) z, and the worst task's best checkpoint through D(E(.)) 1.6 points below it with z, 0.45 with (1-b) z.
// The clamp of z~ to [-1, 1] is an option, OFF by default: this latent is a Linear output, not Tanh-bounded,
// so clamping it would cut the signal, not the noise. (Diffusion on these latents should then not clip x0 /
// x_t to [-1, 1] either, or the latents should be rescaled first: pipeline::cond_pdiff does.)
// An unbounded latent has a catch: the encoder can grow z until the fixed noise b eps is negligible, and the
// decoder then tolerates only errors of about b in a latent spread over a far larger range (seen: max |z| 41
// for b = 0.1), more precision than a diffusion model delivers. Option `tanh_latent` bounds z with a Tanh
// after the Linear, as p-diff's encoder ends, so the noise keeps its meaning; use it with clamp_latent.
//
// Option `linear_skip` (off by default, not in the paper): the decoder adds Linear(latent -> n) of z to the
// conv path's output, x^ = crop(convs(z)) + W z + c. The conv stack's weights are shared along the vector, so
// its output at each coordinate is one function of a few neighbouring bottom features; a LoRA vector's
// coordinates have no such translation structure, and several conditions' vectors, z-scored together, are
// points the shared convs must memorise coordinate by coordinate. The Linear reconstructs any vector in the
// span of its columns exactly (the conditions' centres, their main directions); the convs add the rest.
// Costs latent * n weights (236 K for n = 3688, latent 64; 132 M at the paper's n = 516,096, latent 256).
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <optional>
#include <ratio>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/models/conv_block.hpp"
#include "cpdiff/models/noise_mix.hpp"
#include "cpdiff/models/row_padding.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/batch_norm1d.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "cpdiff/nn/conv_transpose1d.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/sequential.hpp"

namespace cpdiff::models {

// A small preset for tests and examples. A user config is any struct with the same three members.
struct style_small {
  static constexpr std::array<std::size_t, 4> channels{4, 8, 8, 4};
  static constexpr std::size_t kernel = 5, latent = 16;
};
// The paper's (appendix): n = 516,096 LoRA parameters of PixArt-alpha pad to themselves (504 * 2^10) and
// give a bottom of [64, 504]; about 45 M parameters.
struct style_paper {
  static constexpr std::array<std::size_t, 10> channels{16, 32, 64, 128, 256, 384, 512, 768, 1024, 64};
  static constexpr std::size_t kernel = 9, latent = 256;
};

// A preset for LoRA vectors of tens of thousands of parameters (the example's ViT base, n = 24,576): the
// generator's channels with stride 4, bottom [8, 96] for that n.
struct style_vit {
  static constexpr std::array<std::size_t, 4> channels{8, 16, 16, 8};
  static constexpr std::size_t kernel = 5, latent = 64, stride = 4;
};

template <class C>
concept style_ae_config = requires {
  C::channels.size();
  { C::kernel } -> std::convertible_to<std::size_t>;
  { C::latent } -> std::convertible_to<std::size_t>;
};

namespace detail {
// The config's stride, 2 when it has none.
template <class C>
constexpr std::size_t style_stride() {
  if constexpr (requires { C::stride; })
    return C::stride;
  else
    return 2;
}
template <class C, std::size_t I>
inline constexpr std::size_t style_in = I == 0 ? 1 : C::channels[I - 1];
// Decoder level J undoes encoder level D-1-J: c_{D-1-J} -> c_{D-2-J}, and the last one keeps c_0.
template <class C, std::size_t J>
inline constexpr std::size_t style_dec_in = C::channels[C::channels.size() - 1 - J];
template <class C, std::size_t J>
inline constexpr std::size_t style_dec_out = J + 1 == C::channels.size() ? C::channels[0]
                                                                         : C::channels[C::channels.size() - 2 - J];

template <class C, std::size_t I, class T, class B>
using style_enc_level = nn::sequential<nn::conv1d<style_in<C, I>, C::channels[I], C::kernel, T, B, style_stride<C>(), C::kernel / 2>,
                                       nn::batch_norm1d<C::channels[I], T, B>, leaky<T, B>>;
template <class C, std::size_t J, class T, class B>
using style_dec_level = nn::sequential<
    nn::conv_transpose1d<style_dec_in<C, J>, style_dec_out<C, J>, C::kernel, T, B, style_stride<C>(), C::kernel / 2,
                         style_stride<C>() - 1>,
    nn::batch_norm1d<style_dec_out<C, J>, T, B>, nn::elu<std::ratio<1>, T, B>>;

template <class C, class T, class B, class Seq>
struct style_stacks;
template <class C, class T, class B, std::size_t... I>
struct style_stacks<C, T, B, std::index_sequence<I...>> {
  using encoder = nn::sequential<style_enc_level<C, I, T, B>...>;
  using decoder = nn::sequential<style_dec_level<C, I, T, B>...,
                                 nn::conv1d<C::channels[0], 1, C::kernel, T, B, 1, C::kernel / 2>>;
};
}  // namespace detail

template <class Config, class T = float, class B = cpu>
  requires style_ae_config<Config>
class style_autoencoder {
  static_assert(Config::channels.size() > 0 && Config::channels.size() < 8 * sizeof(std::size_t),
                "cpdiff::models::style_autoencoder: give between 1 and 63 channel counts");
  static_assert(Config::kernel % 2 == 1,
                "cpdiff::models::style_autoencoder: the kernel must be odd (pad k/2 halves the length exactly)");
  static_assert(Config::latent > 0, "cpdiff::models::style_autoencoder: the latent size must be positive");
  using stacks = detail::style_stacks<Config, T, B, std::make_index_sequence<Config::channels.size()>>;

 public:
  using value_type = T;
  using backend_type = B;
  using config = Config;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t depth = Config::channels.size();
  static constexpr std::size_t latent_size = Config::latent;
  static constexpr std::size_t bottom_channels = Config::channels[depth - 1];
  static constexpr std::size_t stride = detail::style_stride<Config>();
  static_assert(stride >= 2 && stride <= 16,
                "cpdiff::models::style_autoencoder: the stride must lie in 2..16 (each level divides the length by it)");
  static constexpr std::size_t fold_unit = [] {  // s^D; 0 when it exceeds 2^40
    std::size_t u = 1;
    for (std::size_t i = 0; i < depth && u != 0; ++i) u = u * stride > (std::size_t(1) << 40) ? 0 : u * stride;
    return u;
  }();
  static_assert(fold_unit != 0,
                "cpdiff::models::style_autoencoder: stride^depth exceeds 2^40 (use fewer levels or a smaller stride)");
  static_assert(Config::kernel >= stride,
                "cpdiff::models::style_autoencoder: a kernel shorter than the stride would skip inputs");

  struct options {
    double input_noise = 0.001;  // a: x~ = (1-a) x + a eps
    double latent_noise = 0.1;   // b: z~ = (1-b) z + b eps
    bool clamp_latent = false;   // clamp z~ to [-1, 1] (pdiff_autoencoder does; see the note above)
    bool tanh_latent = false;    // z = Tanh(Linear(...)) instead of Linear(...) (see the note above)
    bool linear_skip = false;    // the decoder adds Linear(latent -> n) of z (see the note above)
    bool noise_mean_at_eval = true;  // encode() / decode() read (1-a) x / (1-b) z (see the note above)
  };

  // Shape arithmetic without a model (the paper's preset is too large to build in a test).
  static constexpr std::size_t padded_size(std::size_t n) { return (n + fold_unit - 1) / fold_unit * fold_unit; }
  static constexpr std::size_t bottom_length(std::size_t n) { return padded_size(n) / fold_unit; }
  // The flattened bottom, the Linear's input: c_{D-1} * m.
  static constexpr std::size_t bottom_size(std::size_t n) { return bottom_channels * bottom_length(n); }

  // n_params: the length of a flattened LoRA vector. seed: initial weights.
  style_autoencoder(std::size_t n_params, std::uint64_t seed, options o = {}, B be = {})
      : n_(check_size(n_params)), opt_(check_options(o)), be_(be), ps_(std::make_unique<parameter_store<T, B>>(be)),
        g_{seed, 0}, encoder_(*ps_, "encoder", g_), enc_fc_(*ps_, "encoder_fc", g_, bottom_size(n_), Config::latent),
        dec_fc_(*ps_, "decoder_fc", g_, Config::latent, bottom_size(n_)), decoder_(*ps_, "decoder", g_) {
    if (opt_.linear_skip) skip_fc_.emplace(*ps_, "decoder_skip", g_, Config::latent, n_);
  }

  std::size_t input_size() const { return n_; }
  std::size_t padded_size() const { return padded_size(n_); }
  // [latent] of one sample (the shape a U-Net's latent_shape takes: use {1, latent} for [C, L]).
  shape latent_shape() const { return {Config::latent}; }
  // [c_{D-1}, m]: the unflattened bottom.
  shape bottom_shape() const { return {bottom_channels, bottom_length(n_)}; }

  parameter_store<T, B>& parameters() { return *ps_; }
  // The configuration that fixes the model (JSON), recorded in checkpoints and weight files, checked on load.
  std::string describe() const {
    std::ostringstream s;
    s << "{\"model\": \"style_autoencoder\", \"n_params\": " << n_ << ", \"kernel\": " << Config::kernel
      << ", \"latent\": " << Config::latent;
    if (stride != 2) s << ", \"stride\": " << stride;  // absent: 2 (files written before the option load as before)
    s << ", \"channels\": [";
    for (std::size_t i = 0; i < Config::channels.size(); ++i) s << (i ? ", " : "") << Config::channels[i];
    s << "], \"tanh_latent\": " << (opt_.tanh_latent ? "true" : "false")
      << ", \"linear_skip\": " << (opt_.linear_skip ? "true" : "false") << "}";
    return s.str();
  }
  const options& noise_options() const { return opt_; }

  // x [N, n] -> z [N, latent], no noise, running statistics.
  cview encode(cview x) {
    set_training(false);
    return encode_padded(at_noise_mean(pad(x, "models::style_autoencoder::encode"), opt_.input_noise, noisy_x_));
  }
  // z [N, latent] -> x [N, n], running statistics.
  cview decode(cview z) {
    constexpr const char* where = "models::style_autoencoder::decode";
    expect_rank(z, 2, where, "latent [N, latent]");
    expect_dim(z, 1, Config::latent, where, "latent [N, latent]");
    expect_nonempty(z, where, "latent [N, latent]");
    set_training(false);
    return decode_latent(at_noise_mean(z, opt_.latent_noise, noisy_z_));
  }

  // Training pass with both noises and batch statistics; returns the reconstruction [N, n].
  cview forward_train(cview x, rng& g) {
    cview xp = pad(x, "models::style_autoencoder::forward_train");
    set_training(true);
    noisy_x_.resize(xp.shape());
    input_mix_.forward(be_, xp, noisy_x_.view(), T(opt_.input_noise), g);
    cview z = encode_padded(noisy_x_.cview());
    noisy_z_.resize(z.shape());
    latent_mix_.forward(be_, z, noisy_z_.view(), T(opt_.latent_noise), g);
    return decode_latent(opt_.clamp_latent ? clamp_.forward(noisy_z_.cview()) : noisy_z_.cview());
  }
  // d(loss)/d(reconstruction) [N, n] -> parameter gradients (added into parameters().grads()).
  void backward_train(cview drecon) {
    constexpr const char* where = "models::style_autoencoder::backward_train";
    expect_shape(drecon, recon_.shape(), where, "d(reconstruction)");
    const std::size_t n = drecon.dim(0);
    // d out [N, 1, Lp]: zeros in the padded tail
    cview d = decoder_.backward(pad_rows(be_, drecon, n_, padded_size(), dpad_));  // d unflatten [N, c, m]
    // d z~ [N, latent]
    d = nn::in_member("decoder_fc", [&] { return dec_fc_.backward(d.reshape({n, bottom_size(n_)})); });
    if (skip_fc_) {  // d z~ += d(W z~) / d z~
      dskip_.resize(d.shape());
      copy(be_, d, dskip_.view());
      axpy(be_, T(1), skip_fc_->backward(drecon), dskip_.view());
      d = dskip_.cview();
    }
    if (opt_.clamp_latent) d = clamp_.backward(d);
    dlatent_.resize(d.shape());
    latent_mix_.backward(be_, d, dlatent_.view(), T(opt_.latent_noise));  // d z = (1 - b) d z~
    d = dlatent_.cview();
    if (opt_.tanh_latent) d = bound_.backward(d);
    d = nn::in_member("encoder_fc", [&] { return enc_fc_.backward(d); });  // d flatten [N, c m]
    encoder_.backward(d.reshape({n, bottom_channels, bottom_length(n_)}));
  }

 private:
  static std::size_t check_size(std::size_t n) {
    CPDIFF_CHECK(n > 0, config_error, "models::style_autoencoder", "n_params must be positive");
    return n;
  }
  static options check_options(const options& o) {
    CPDIFF_CHECK(o.input_noise >= 0 && o.input_noise <= 1 && o.latent_noise >= 0 && o.latent_noise <= 1, config_error,
                 "models::style_autoencoder", "noise factors must lie in [0, 1], got ", o.input_noise, " and ",
                 o.latent_noise);
    return o;
  }
  // Evaluation's input: (1 - f) v in `buf`, the mean of training's noisy v~ = (1 - f) v + f eps; v itself when
  // noise_mean_at_eval is off or f = 0.
  cview at_noise_mean(cview v, double f, tensor<T, B>& buf) {
    if (!opt_.noise_mean_at_eval || f == 0) return v;
    buf.resize(v.shape());
    noise_mix<T, B>::mean(be_, v, buf.view(), T(f));
    return buf.cview();
  }
  void set_training(bool on) {
    encoder_.set_training(on);
    decoder_.set_training(on);
  }
  // [N, 1, Lp] -> z [N, latent]
  cview encode_padded(cview xp) {
    cview h = encoder_.forward(xp);  // [N, c_{D-1}, m]
    cview z = nn::in_member("encoder_fc", [&] { return enc_fc_.forward(h.reshape({xp.dim(0), bottom_size(n_)})); });
    return opt_.tanh_latent ? bound_.forward(z) : z;
  }
  // z [N, latent] -> [N, n]
  cview decode_latent(cview z) {
    const std::size_t n = z.dim(0);
    cview h = nn::in_member("decoder_fc", [&] { return dec_fc_.forward(z); })
                  .reshape({n, bottom_channels, bottom_length(n_)});
    cview x = crop_rows(be_, decoder_.forward(h), n_, recon_);  // [N, 1, Lp] -> [N, n]
    if (skip_fc_) axpy(be_, T(1), skip_fc_->forward(z), recon_.view());
    return x;
  }
  // [N, n] -> [N, 1, Lp], zeros after n.
  cview pad(cview x, const char* where) {
    expect_rank(x, 2, where, "input [N, n]");
    expect_dim(x, 1, n_, where, "input [N, n]");
    expect_nonempty(x, where, "input [N, n]");
    return pad_rows(be_, x, n_, padded_size(), padded_);
  }

  std::size_t n_;
  options opt_;
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  typename stacks::encoder encoder_;
  nn::linear<dynamic, Config::latent, T, B> enc_fc_;
  nn::linear<Config::latent, dynamic, T, B> dec_fc_;
  typename stacks::decoder decoder_;
  std::optional<nn::linear<Config::latent, dynamic, T, B>> skip_fc_;
  nn::hardtanh<T, B> clamp_{*ps_};
  nn::tanh_layer<T, B> bound_{*ps_};
  noise_mix<T, B> input_mix_, latent_mix_;
  tensor<T, B> padded_, noisy_x_, noisy_z_, dlatent_, recon_, dpad_, dskip_;
};

}  // namespace cpdiff::models
