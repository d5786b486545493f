#pragma once
// pdiff_unet<Config, TimeEmbedding>: p-diff's 1-D U-Net denoiser (no down-sampling, additive skips) with
// Cond P-Diff's condition by concatenation (the text/task path, SPEC.md "Conditional 1-D U-Net").
//
//   z [N, C, L] -> flatten [N, CL]; concat the condition feature c [N, D] -> h [N, 1, S], S = CL + D
//   e(t) [N, S]: the timestep embedding, added (over channels) to the input of every block
//   enc1 = E1(h + e)            E1: 1 -> c0        (first block: no leading LeakyReLU)
//   enc2 = E2(enc1 + e)         E2: c0 -> c1
//   enc3 = E3(enc2 + e)         E3: c1 -> c2
//   enc4 = E4(enc3 + e)         E4: c2 -> c3
//   dec1 = D1(enc4 + e) + enc3  D1: c3 -> c2
//   dec2 = D2(dec1 + e) + enc2  D2: c2 -> c1
//   dec3 = D3(dec2 + e) + enc1  D3: c1 -> c0
//   dec4 = D4(dec3 + e)         D4: c0 -> c0 -> 1
//   eps_hat = Linear(S -> CL)(dec4) reshaped to [N, C, L]
// Each block: (LeakyReLU) -> InstanceNorm -> Conv(k, pad k/2) -> LeakyReLU -> InstanceNorm -> Conv.
// Timesteps are per sample (p-diff's code used the first sample's for the whole batch).
#include <array>
#include <cstdint>
#include <memory>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/models/conv_block.hpp"
#include "cpdiff/models/time_embedding.hpp"
#include "cpdiff/nn/linear.hpp"

namespace cpdiff::models {

// p-diff's channels. A user config is any struct with `channels` (4 entries) and `kernel`.
struct pdiff_unet_default {
  static constexpr std::array<std::size_t, 4> channels{64, 128, 256, 512};
  static constexpr std::size_t kernel = 3;
};

template <class C>
concept pdiff_unet_config = C::channels.size() == 4 && C::kernel % 2 == 1;

template <class Config = pdiff_unet_default, class TimeEmbedding = learned, class T = float, class B = cpu,
          class Index = std::int64_t>
  requires pdiff_unet_config<Config>
class pdiff_unet {
  static constexpr auto c = Config::channels;
  static constexpr std::size_t k = Config::kernel;

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using view = tensor_view<T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  // latent: the shape of one sample's latent [C, L]; cond_dim: D; timesteps: T of the schedule.
  pdiff_unet(shape latent, std::size_t cond_dim, std::size_t timesteps, std::uint64_t seed, B be = {})
      : latent_(latent), lat_(latent.size()), d_(cond_dim), s_(lat_ + cond_dim), be_(be),
        ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0},
        time_(*ps_, "time_encode", g_, timesteps, s_),
        enc1_(*ps_, "enc1", g_), enc2_(*ps_, "enc2", g_), enc3_(*ps_, "enc3", g_), enc4_(*ps_, "enc4", g_),
        dec1_(*ps_, "dec1", g_), dec2_(*ps_, "dec2", g_), dec3_(*ps_, "dec3", g_), dec4_(*ps_, "dec4", g_),
        out_(*ps_, "out", g_, s_, lat_) {
    CPDIFF_CHECK(lat_ > 0 && timesteps > 0, config_error, "models::pdiff_unet", "latent ", latent,
                 " and timesteps ", timesteps, " must be non-empty");
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  const shape& latent_shape() const { return latent_; }
  std::size_t cond_dim() const { return d_; }
  std::size_t sequence_length() const { return s_; }

  // z [N, C, L], t [N], cond [N, D] -> eps_hat [N, C, L]
  cview forward(cview z, tview t, cview cond) {
    constexpr const char* where = "models::pdiff_unet::forward";
    CPDIFF_CHECK(z.rank() >= 2 && z.size() == z.dim(0) * lat_ && z.shape().tail(1) == latent_, shape_error, where,
                 "latent: expected [N, ", latent_[0], ", ", latent_.rank() > 1 ? latent_[1] : 1, "], got ", z.shape());
    const std::size_t n = z.dim(0);
    expect_nonempty(z, where, "latent");
    CPDIFF_CHECK(t.rank() == 1 && t.dim(0) == n, shape_error, where, "timesteps: expected [", n, "], got ", t.shape());
    CPDIFF_CHECK(cond.rank() == 2 && cond.dim(0) == n && cond.dim(1) == d_, shape_error, where,
                 "condition: expected [", n, ", ", d_, "], got ", cond.shape());
    n_ = n;
    z_shape_ = z.shape();
    // h [N, 1, S] = [flatten(z) | cond]
    h_.resize({n, 1, s_});
    copy_rows(be_, z.data(), lat_, h_.data(), s_, n, lat_);
    copy_rows(be_, cond.data(), d_, h_.data() + lat_, s_, n, d_);
    e_ = time_.forward(t);  // [N, S]
    cview a = with_time(h_.cview(), in_[0]);
    cview enc1 = enc1_.forward(a);
    cview enc2 = enc2_.forward(with_time(enc1, in_[1]));
    cview enc3 = enc3_.forward(with_time(enc2, in_[2]));
    cview enc4 = enc4_.forward(with_time(enc3, in_[3]));
    cview dec1 = plus(dec1_.forward(with_time(enc4, in_[4])), enc3, skip_[0]);
    cview dec2 = plus(dec2_.forward(with_time(dec1, in_[5])), enc2, skip_[1]);
    cview dec3 = plus(dec3_.forward(with_time(dec2, in_[6])), enc1, skip_[2]);
    cview dec4 = dec4_.forward(with_time(dec3, in_[7]));  // [N, 1, S]
    return nn::in_member("out", [&] { return out_.forward(dec4.reshape({n, s_})); }).reshape(z.shape());
  }

  // d eps_hat [N, C, L] -> parameter gradients; returns d cond [N, D] (for a jointly trained condition encoder).
  cview backward(cview deps) {
    constexpr const char* where = "models::pdiff_unet::backward";
    expect_shape(deps, z_shape_, where, "d(eps_hat)");
    de_.resize({n_, s_});
    fill(be_, de_.view(), T(0));
    // d dec4
    cview d = nn::in_member("out", [&] { return out_.backward(deps.reshape({n_, lat_})); }).reshape({n_, 1, s_});
    d = through_time(dec4_.backward(d));  // d dec3
    const cview d_enc1_skip = d;
    d = through_time(dec3_.backward(d));  // d dec2
    const cview d_enc2_skip = d;
    d = through_time(dec2_.backward(d));  // d dec1
    const cview d_enc3_skip = d;
    d = through_time(dec1_.backward(d));                                     // d enc4
    d = plus(through_time(enc4_.backward(d)), d_enc3_skip, dskip_[0]);      // d enc3
    d = plus(through_time(enc3_.backward(d)), d_enc2_skip, dskip_[1]);      // d enc2
    d = plus(through_time(enc2_.backward(d)), d_enc1_skip, dskip_[2]);      // d enc1
    d = through_time(enc1_.backward(d));                                     // d h [N, 1, S]
    time_.backward(de_.cview());
    dcond_.resize({n_, d_});
    copy_rows(be_, d.data() + lat_, s_, dcond_.data(), d_, n_, d_);
    return dcond_.cview();
  }

 private:
  // buf = x + e over channels; x [N, C, S]
  cview with_time(cview x, tensor<T, B>& buf) {
    buf.resize(x.shape());
    add_over_channels(be_, x.data(), e_.data(), buf.data(), n_, x.dim(1), s_);
    return buf.cview();
  }
  // d flows unchanged into the block's input; its channel sums are the embedding's share.
  cview through_time(cview d) {
    add_channel_sums(be_, d.data(), de_.data(), n_, d.dim(1), s_);
    return d;
  }
  cview plus(cview a, cview b, tensor<T, B>& buf) {
    buf.resize(a.shape());
    copy(be_, a, buf.view());
    axpy(be_, T(1), b, buf.view());
    return buf.cview();
  }

  shape latent_;
  std::size_t lat_, d_, s_;
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  typename TimeEmbedding::template embedding<T, B, Index> time_;
  norm_conv_block<1, c[0], c[0], k, true, T, B> enc1_;
  norm_conv_block<c[0], c[1], c[1], k, false, T, B> enc2_;
  norm_conv_block<c[1], c[2], c[2], k, false, T, B> enc3_;
  norm_conv_block<c[2], c[3], c[3], k, false, T, B> enc4_;
  norm_conv_block<c[3], c[2], c[2], k, false, T, B> dec1_;
  norm_conv_block<c[2], c[1], c[1], k, false, T, B> dec2_;
  norm_conv_block<c[1], c[0], c[0], k, false, T, B> dec3_;
  norm_conv_block<c[0], c[0], 1, k, false, T, B> dec4_;
  nn::linear<dynamic, dynamic, T, B> out_;
  std::size_t n_ = 0;
  shape z_shape_;
  cview e_;
  tensor<T, B> h_, de_, dcond_;
  std::array<tensor<T, B>, 8> in_;
  std::array<tensor<T, B>, 3> skip_, dskip_;
};

}  // namespace cpdiff::models
