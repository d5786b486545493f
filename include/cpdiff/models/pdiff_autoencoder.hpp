#pragma once
// pdiff_autoencoder<Config>: p-diff's 1-D convolutional parameter autoencoder (SPEC.md "p-diff conv AE"),
// the one Cond P-Diff's code uses for its GLUE experiments.
//
//   x [N, n] -> [N, 1, n] zero-padded to Lp = (floor(n / f^D) + 1) f^D
//   encoder block i:  (LeakyReLU, not on block 0) -> InstanceNorm -> Conv(a_i -> m_i, k, s1, p1)
//                     -> LeakyReLU -> InstanceNorm -> Conv(m_i -> enc[i], k, stride f, p0)
//     with a_0 = 1, m_0 = enc[0] and a_i = m_i = enc[i-1] after, as p-diff's code builds it (SPEC.md's
//     "[1] + enc" reading, Conv(1 -> 1) then Conv(1 -> enc[0]) in block 0, differs only there).
//   then Tanh: latent z [N, enc.back(), L]
//   decoder block i (channels dec + [1]):  LeakyReLU -> InstanceNorm -> ConvTranspose(c_i->c_i, k, stride f, p0)
//                                          -> LeakyReLU -> InstanceNorm -> Conv(c_i -> c_{i+1}, k, s1, pad f-1; f on the last)
//   then crop to [N, n]. InstanceNorm without affine, eps 1e-5; LeakyReLU slope 0.01.
// Training adds noise (SPEC.md step 4): x~ = (1-a) x + a eps, z~ = clamp((1-b) z + b eps', -1, 1),
// loss MSE(D(z~), x); encode()/decode() add none.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/models/conv_block.hpp"
#include "cpdiff/models/noise_mix.hpp"
#include "cpdiff/models/row_padding.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "cpdiff/nn/conv_transpose1d.hpp"
#include "cpdiff/nn/instance_norm1d.hpp"
#include "cpdiff/nn/sequential.hpp"

namespace cpdiff::models {

// The presets of p-diff's code. A user config is any struct with the same four members.
struct pdiff_small {
  static constexpr std::size_t fold = 3, kernel = 3;
  static constexpr std::array<std::size_t, 4> enc{2, 2, 2, 2}, dec{2, 64, 64, 8};
};
struct pdiff_medium {
  static constexpr std::size_t fold = 5, kernel = 5;
  static constexpr std::array<std::size_t, 4> enc{4, 4, 4, 4}, dec{4, 256, 256, 8};
};

template <class C>
concept pdiff_ae_config = requires {
  { C::fold } -> std::convertible_to<std::size_t>;
  { C::kernel } -> std::convertible_to<std::size_t>;
  C::enc.size();
  C::dec.size();
} && C::enc.size() == C::dec.size() && C::enc.size() > 0 && C::fold > 1 && C::kernel >= 3;

namespace detail {
template <class A>
std::string json_list(const A& a) {
  std::string s = "[";
  for (std::size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i]);
  return s + "]";
}
template <class C, std::size_t I>
inline constexpr std::size_t enc_in = I == 0 ? 1 : C::enc[I - 1];
template <class C, std::size_t I>
inline constexpr std::size_t dec_out = I + 1 == C::dec.size() ? 1 : C::dec[I + 1];

// Block i's width: p-diff's code widens in the first conv of block 0 (1 -> enc[0]) and in the strided conv
// of the later blocks (enc[i-1] -> enc[i]).
template <class C, std::size_t I>
inline constexpr std::size_t enc_mid = I == 0 ? C::enc[0] : C::enc[I - 1];

template <class C, std::size_t I, class T, class B>
using enc_block = norm_conv_block<enc_in<C, I>, enc_mid<C, I>, C::enc[I], C::kernel, I == 0, T, B, 1, C::fold, 0>;
template <class C, std::size_t I, class T, class B>
using dec_block = nn::sequential<
    leaky<T, B>, nn::instance_norm1d<C::dec[I], T, B>,
    nn::conv_transpose1d<C::dec[I], C::dec[I], C::kernel, T, B, C::fold, 0>, leaky<T, B>,
    nn::instance_norm1d<C::dec[I], T, B>,
    nn::conv1d<C::dec[I], dec_out<C, I>, C::kernel, T, B, 1, (I + 1 == C::dec.size() ? C::fold : C::fold - 1)>>;

template <class C, class T, class B, class Seq>
struct pdiff_stacks;
template <class C, class T, class B, std::size_t... I>
struct pdiff_stacks<C, T, B, std::index_sequence<I...>> {
  using encoder = nn::sequential<enc_block<C, I, T, B>..., nn::tanh_layer<T, B>>;
  using decoder = nn::sequential<dec_block<C, I, T, B>...>;
};
}  // namespace detail

template <class Config, class T = float, class B = cpu>
  requires pdiff_ae_config<Config>
class pdiff_autoencoder {
  static_assert(Config::enc.back() == Config::dec.front(),
                "cpdiff::models::pdiff_autoencoder: the last encoder channel count (the latent's) must equal the "
                "first decoder channel count");
  using stacks = detail::pdiff_stacks<Config, T, B, std::make_index_sequence<Config::enc.size()>>;

 public:
  using value_type = T;
  using backend_type = B;
  using config = Config;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t depth = Config::enc.size();
  static constexpr std::size_t latent_channels = Config::enc.back();

  struct options {
    double input_noise = 0.001;  // a: x~ = (1-a) x + a eps
    double latent_noise = 0.1;   // b: z~ = clamp((1-b) z + b eps, -1, 1)
  };

  // n_params: the length of a flattened LoRA vector. seed: initial weights.
  pdiff_autoencoder(std::size_t n_params, std::uint64_t seed, options o = {}, B be = {})
      : n_(n_params), opt_(o), be_(be), ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0},
        encoder_(*ps_, "encoder", g_), decoder_(*ps_, "decoder", g_) {
    CPDIFF_CHECK(n_params > 0, config_error, "models::pdiff_autoencoder", "n_params must be positive");
    CPDIFF_CHECK(latent_length() > 0, config_error, "models::pdiff_autoencoder", "n_params ", n_params,
                 " is too small for this configuration (latent length 0)");
    CPDIFF_CHECK(o.input_noise >= 0 && o.input_noise <= 1 && o.latent_noise >= 0 && o.latent_noise <= 1, config_error,
                 "models::pdiff_autoencoder", "noise factors must lie in [0, 1], got ", o.input_noise, " and ",
                 o.latent_noise);
  }

  static constexpr std::size_t fold_unit() {
    std::size_t u = 1;
    for (std::size_t i = 0; i < depth; ++i) u *= Config::fold;
    return u;
  }
  std::size_t input_size() const { return n_; }
  std::size_t padded_size() const { return (n_ / fold_unit() + 1) * fold_unit(); }
  std::size_t latent_length() const {
    std::size_t len = padded_size();
    for (std::size_t i = 0; i < depth; ++i) {
      len = len >= Config::kernel - 1 ? len - (Config::kernel - 3) : 0;  // k, stride 1, pad 1
      len = len >= Config::kernel ? (len - Config::kernel) / Config::fold + 1 : 0;
    }
    return len;
  }
  // [latent channels, latent length] of one sample.
  shape latent_shape() const { return {latent_channels, latent_length()}; }

  parameter_store<T, B>& parameters() { return *ps_; }
  // The configuration that fixes the model (JSON), recorded in checkpoints and weight files and checked on
  // load: the convolutions' shapes do not depend on n, so the parameters alone cannot tell two apart.
  std::string describe() const {
    std::ostringstream s;
    s << "{\"model\": \"pdiff_autoencoder\", \"n_params\": " << n_ << ", \"fold\": " << Config::fold
      << ", \"kernel\": " << Config::kernel << ", \"enc\": " << detail::json_list(Config::enc)
      << ", \"dec\": " << detail::json_list(Config::dec) << "}";
    return s.str();
  }
  const options& noise_options() const { return opt_; }

  // x [N, n] -> z [N, C, L], no noise.
  cview encode(cview x) { return encoder_.forward(pad(x)); }
  // z [N, C, L] -> x [N, n].
  cview decode(cview z) {
    constexpr const char* where = "models::pdiff_autoencoder::decode";
    expect_rank(z, 3, where, "latent [N, C, L]");
    CPDIFF_CHECK(z.dim(1) == latent_channels && z.dim(2) == latent_length(), shape_error, where,
                 "latent [N, C, L]: expected [*, ", latent_channels, ", ", latent_length(), "] (this model's, n = ", n_,
                 "), got ", z.shape());
    expect_nonempty(z, where, "latent [N, C, L]");
    return crop(decoder_.forward(z));
  }

  // Training pass with both noises; returns the reconstruction [N, n].
  cview forward_train(cview x, rng& g) {
    cview xp = pad(x);
    noisy_x_.resize(xp.shape());
    input_mix_.forward(be_, xp, noisy_x_.view(), T(opt_.input_noise), g);
    cview z = encoder_.forward(noisy_x_.cview());
    noisy_z_.resize(z.shape());
    latent_mix_.forward(be_, z, noisy_z_.view(), T(opt_.latent_noise), g);
    cview zc = clamp_.forward(noisy_z_.cview());
    return crop(decoder_.forward(zc));
  }
  // d(loss)/d(reconstruction) [N, n] -> parameter gradients (added into parameters().grads()).
  void backward_train(cview drecon) {
    cview dz = decoder_.backward(uncrop(drecon));
    dz = clamp_.backward(dz);
    dlatent_.resize(dz.shape());
    latent_mix_.backward(be_, dz, dlatent_.view(), T(opt_.latent_noise));
    encoder_.backward(dlatent_.cview());
  }

  void set_training(bool on) {
    encoder_.set_training(on);
    decoder_.set_training(on);
  }

 private:
  // [N, n] -> [N, 1, Lp], zeros after n.
  cview pad(cview x) {
    constexpr const char* where = "models::pdiff_autoencoder::encode";
    expect_rank(x, 2, where, "input [N, n]");
    expect_dim(x, 1, n_, where, "input [N, n]");
    expect_nonempty(x, where, "input [N, n]");
    return pad_rows(be_, x, n_, padded_size(), padded_);
  }
  // [N, 1, Lout] -> [N, n]
  cview crop(cview y) {
    CPDIFF_CHECK(y.dim(2) >= n_, shape_error, "models::pdiff_autoencoder::decode", "decoder output ", y.shape(),
                 " is shorter than n = ", n_, " (latent shape wrong for this model?)");
    dec_len_ = y.dim(2);
    return crop_rows(be_, y, n_, recon_);
  }
  // d[N, n] -> d[N, 1, Lout] with zeros in the cropped tail.
  cview uncrop(cview d) {
    expect_shape(d, recon_.shape(), "models::pdiff_autoencoder::backward_train", "d(reconstruction)");
    return pad_rows(be_, d, n_, dec_len_, duncrop_);
  }

  std::size_t n_;
  options opt_;
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  typename stacks::encoder encoder_;
  typename stacks::decoder decoder_;
  nn::hardtanh<T, B> clamp_{*ps_};
  noise_mix<T, B> input_mix_, latent_mix_;
  tensor<T, B> padded_, noisy_x_, noisy_z_, dlatent_, recon_, duncrop_;
  std::size_t dec_len_ = 0;
};

}  // namespace cpdiff::models
