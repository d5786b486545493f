#pragma once
// bottom_unet<Config, TimeEmbedding>: the appendix's 1-D U-Net denoiser with the condition by bottom embedding
// (SPEC.md "Conditional 1-D U-Net", the style path). Same interface as pdiff_unet, so samplers and trainers
// take either: forward(z, t, cond) -> eps_hat, backward(d eps_hat) -> d cond.
//
//   z [N, ...] (S = the latent's size per sample) -> x [N, 1, Sp], zero-padded to Sp = ceil(S / 2^(D-1)) 2^(D-1)
//   e(t) [N, Sp + F] = [e_top | e_bot], one timestep embedding (learned table or sinusoidal MLP) split in two
//   enc_0 = down_0(x + e_top)                 Conv(1 -> c_0, k, stride 1)        [N, c_0, Sp]
//   enc_i = down_i(enc_{i-1}), i = 1..D-1     Conv(c_{i-1} -> c_i, k, stride 2)  [N, c_i, Sp / 2^i]
//   b     = Linear(F -> F)(flatten enc_{D-1}) + e_bot + P(cond)                  [N, F], F = c_{D-1} Sp / 2^(D-1)
//           P = Linear(D_cond -> F), or the identity when D_cond = F
//   u_{D-1} = unflatten(LeakyReLU(b))                                            [N, c_{D-1}, Sp / 2^(D-1)]
//   u_{i-1} = up_j(u_i) + enc_{i-1}, j = D-1-i    ConvT(c_i -> c_{i-1}, k, stride 2, output pad 1)
//   eps_hat = crop(out(u_0 + e_top))          Conv(c_0 -> 1, k, stride 1), reshaped like z
// Every down / up level is conv -> GroupNorm(groups) -> LeakyReLU(0.01); all convs pad k/2, additive skips.
//
// The timestep is added per sample where a vector of its length fits: over channels at the two full-length
// ends (p-diff adds it to every block input; here the middle levels have other lengths), and at the bottom
// with the condition, so that the decoder sees t and c together.
// GroupNorm, not BatchNorm: a denoiser's batch mixes noise levels, and a sample must not depend on the others;
// and not InstanceNorm, which needs length > 1 and the bottom levels may be shorter.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/models/conv_block.hpp"
#include "cpdiff/models/time_embedding.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "cpdiff/nn/conv_transpose1d.hpp"
#include "cpdiff/nn/group_norm.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/sequential.hpp"

namespace cpdiff::models {

// The appendix's channels (a 256-d latent gives a bottom of [32, 2], F = 64). Users give any struct with
// `channels` (at least 2), an odd `kernel` and `groups` dividing every channel count.
struct bottom_unet_paper {
  static constexpr std::array<std::size_t, 8> channels{64, 128, 256, 512, 768, 1024, 1024, 32};
  static constexpr std::size_t kernel = 3, groups = 32;
};
struct bottom_unet_small {
  static constexpr std::array<std::size_t, 4> channels{16, 32, 32, 8};
  static constexpr std::size_t kernel = 3, groups = 8;
};

template <class C>
concept bottom_unet_config = requires {
  C::channels.size();
  { C::kernel } -> std::convertible_to<std::size_t>;
  { C::groups } -> std::convertible_to<std::size_t>;
};

namespace detail {
template <class C>
constexpr bool groups_divide_channels() {
  for (std::size_t c : C::channels)
    if (C::groups == 0 || c % C::groups != 0) return false;
  return true;
}
template <class C, std::size_t I, class T, class B>
using unet_down = nn::sequential<
    nn::conv1d<I == 0 ? 1 : C::channels[I - 1], C::channels[I], C::kernel, T, B, I == 0 ? 1 : 2, C::kernel / 2>,
    nn::group_norm<C::groups, C::channels[I], T, B>, leaky<T, B>>;
// up_J undoes down_{D-1-J}: c_{D-1-J} -> c_{D-2-J}, length doubled.
template <class C, std::size_t J, class T, class B, std::size_t D = C::channels.size()>
using unet_up = nn::sequential<
    nn::conv_transpose1d<C::channels[D - 1 - J], C::channels[D - 2 - J], C::kernel, T, B, 2, C::kernel / 2, 1>,
    nn::group_norm<C::groups, C::channels[D - 2 - J], T, B>, leaky<T, B>>;

template <class C, class T, class B, class Down, class Up>
struct unet_stacks;
template <class C, class T, class B, std::size_t... I, std::size_t... J>
struct unet_stacks<C, T, B, std::index_sequence<I...>, std::index_sequence<J...>> {
  using down = nn::sequential<unet_down<C, I, T, B>...>;
  using up = nn::sequential<unet_up<C, J, T, B>...>;
};
}  // namespace detail

template <class Config = bottom_unet_paper, class TimeEmbedding = learned, class T = float, class B = cpu,
          class Index = std::int64_t>
  requires bottom_unet_config<Config>
class bottom_unet {
  static constexpr std::size_t D = Config::channels.size();
  static_assert(D >= 2 && D < 8 * sizeof(std::size_t),
                "cpdiff::models::bottom_unet: give at least 2 channel counts (one full-length level, one down)");
  static_assert(Config::kernel % 2 == 1, "cpdiff::models::bottom_unet: the kernel must be odd (pad k/2)");
  static_assert(detail::groups_divide_channels<Config>(),
                "cpdiff::models::bottom_unet: Config::groups must be positive and divide every channel count");
  using stacks = detail::unet_stacks<Config, T, B, std::make_index_sequence<D>, std::make_index_sequence<D - 1>>;

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using view = tensor_view<T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;
  static constexpr std::size_t depth = D;
  static constexpr std::size_t fold_unit = std::size_t(1) << (D - 1);  // 2^(D-1)
  static constexpr std::size_t bottom_channels = Config::channels[D - 1];

  // Shape arithmetic for a latent of S elements per sample.
  static constexpr std::size_t padded_length(std::size_t s) { return (s + fold_unit - 1) / fold_unit * fold_unit; }
  static constexpr std::size_t bottom_length(std::size_t s) { return padded_length(s) / fold_unit; }
  static constexpr std::size_t bottom_size(std::size_t s) { return bottom_channels * bottom_length(s); }

  // latent: the shape of one sample's latent ([C, L] or [S]); cond_dim: D_cond; timesteps: T of the schedule.
  bottom_unet(shape latent, std::size_t cond_dim, std::size_t timesteps, std::uint64_t seed, B be = {})
      : latent_(latent), s_(check_latent(latent, timesteps)), sp_(padded_length(s_)), f_(bottom_size(s_)),
        d_(cond_dim), be_(be), ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0},
        time_(*ps_, "time_encode", g_, timesteps, sp_ + f_), down_(*ps_, "down", g_),
        bottom_(*ps_, "bottom", g_, f_, f_), up_(*ps_, "up", g_), out_(*ps_, "out", g_) {
    CPDIFF_CHECK(cond_dim > 0, config_error, "models::bottom_unet", "cond_dim must be positive");
    if (d_ != f_) proj_.emplace(*ps_, "cond_proj", g_, d_, f_);
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  const shape& latent_shape() const { return latent_; }
  std::size_t cond_dim() const { return d_; }
  std::size_t padded_length() const { return sp_; }
  // F: the flattened bottom, which the condition feature is added to.
  std::size_t bottom_size() const { return f_; }
  // Whether the condition goes through a Linear (cond_dim != bottom_size()).
  bool projects_condition() const { return proj_.has_value(); }

  // z [N, latent...], t [N], cond [N, D_cond] -> eps_hat [N, latent...]
  cview forward(cview z, tview t, cview cond) {
    constexpr const char* where = "models::bottom_unet::forward";
    CPDIFF_CHECK(z.rank() == latent_.rank() + 1 && z.shape().tail(1) == latent_, shape_error, where,
                 "latent: expected [N] + ", latent_, ", got ", z.shape());
    expect_nonempty(z, where, "latent");
    const std::size_t n = z.dim(0);
    CPDIFF_CHECK(t.rank() == 1 && t.dim(0) == n, shape_error, where, "timesteps: expected [", n, "], got ",
                 t.shape());
    CPDIFF_CHECK(cond.rank() == 2 && cond.dim(0) == n && cond.dim(1) == d_, shape_error, where,
                 "condition: expected [", n, ", ", d_, "], got ", cond.shape());
    n_ = n;
    z_shape_ = z.shape();
    // e [N, Sp + F] -> e_top [N, Sp], e_bot [N, F]
    cview e = time_.forward(t);
    e_top_.resize({n_, sp_});
    e_bot_.resize({n_, f_});
    copy_rows(be_, e.data(), sp_ + f_, e_top_.data(), sp_, n_, sp_);
    copy_rows(be_, e.data() + sp_, sp_ + f_, e_bot_.data(), f_, n_, f_);
    // h0 [N, 1, Sp] = pad(z) + e_top
    h0_.resize({n_, 1, sp_});
    fill(be_, h0_.view(), T(0));
    copy_rows(be_, z.data(), s_, h0_.data(), sp_, n_, s_);
    axpy(be_, T(1), e_top_.cview(), h0_.view().reshape({n_, sp_}));
    encode_levels(std::make_index_sequence<D>{});
    // b [N, F] = bottom(flatten enc_{D-1}) + e_bot + P(cond)
    b_.resize({n_, f_});
    copy(be_, nn::in_member("bottom", [&] { return bottom_.forward(enc_[D - 1].reshape({n_, f_})); }), b_.view());
    axpy(be_, T(1), e_bot_.cview(), b_.view());
    axpy(be_, T(1), proj_ ? proj_->forward(cond) : cond, b_.view());
    u_[D - 1] = act_.forward(b_.cview()).reshape({n_, bottom_channels, bottom_length(s_)});
    decode_levels(std::make_index_sequence<D - 1>{});
    // o [N, c_0, Sp] = u_0 + e_top over channels
    o_.resize(u_[0].shape());
    add_over_channels(be_, u_[0].data(), e_top_.data(), o_.data(), n_, Config::channels[0], sp_);
    cview y = out_.forward(o_.cview());  // [N, 1, Sp]
    eps_.resize(z.shape());
    copy_rows(be_, y.data(), sp_, eps_.data(), s_, n_, s_);
    return eps_.cview();
  }

  // d eps_hat [N, latent...] -> parameter gradients; returns d cond [N, D_cond].
  cview backward(cview deps) {
    constexpr const char* where = "models::bottom_unet::backward";
    CPDIFF_CHECK(n_ > 0, shape_error, where, "backward called before forward");
    expect_shape(deps, z_shape_, where, "d(eps_hat)");
    de_top_.resize({n_, sp_});
    fill(be_, de_top_.view(), T(0));
    // d y [N, 1, Sp]: zeros in the padded tail
    dy_.resize({n_, 1, sp_});
    fill(be_, dy_.view(), T(0));
    copy_rows(be_, deps.data(), s_, dy_.data(), sp_, n_, s_);
    du_[0] = out_.backward(dy_.cview());  // d o = d u_0 [N, c_0, Sp]
    // d e_top += sum_c d o
    add_channel_sums(be_, du_[0].data(), de_top_.data(), n_, Config::channels[0], sp_);
    decode_levels_backward(std::make_index_sequence<D - 1>{});
    // d b [N, F] = LeakyReLU'(b) d u_{D-1}
    cview db = act_.backward(du_[D - 1].reshape({n_, f_}));
    // d cond = P^T d b (or d b)
    dcond_.resize({n_, d_});
    copy(be_, proj_ ? proj_->backward(db) : db, dcond_.view());
    // d enc_{D-1} = bottom^T d b, then down the encoder with the skip gradients
    cview d = nn::in_member("bottom", [&] { return bottom_.backward(db); }).reshape(enc_[D - 1].shape());
    encode_levels_backward(d, std::make_index_sequence<D>{});
    // d e [N, Sp + F] = [d e_top | d e_bot], d e_bot = d b
    de_.resize({n_, sp_ + f_});
    copy_rows(be_, de_top_.data(), sp_, de_.data(), sp_ + f_, n_, sp_);
    copy_rows(be_, db.data(), f_, de_.data() + sp_, sp_ + f_, n_, f_);
    time_.backward(de_.cview());
    return dcond_.cview();
  }

 private:
  static std::size_t check_latent(const shape& latent, std::size_t timesteps) {
    CPDIFF_CHECK(latent.rank() >= 1 && latent.rank() < shape::max_rank && latent.size() > 0 && timesteps > 0,
                 config_error, "models::bottom_unet", "latent ", latent, " and timesteps ", timesteps,
                 " must be non-empty (latent of rank 1..", shape::max_rank - 1, ")");
    return latent.size();
  }

  template <std::size_t... I>
  void encode_levels(std::index_sequence<I...>) {
    ((enc_[I] = down_.template get<I>().forward(I == 0 ? h0_.cview() : enc_[I == 0 ? 0 : I - 1])), ...);
  }
  // u_{i-1} = up_j(u_i) + enc_{i-1}, i = D-1-j, for j = 0, 1, ...
  template <std::size_t... J>
  void decode_levels(std::index_sequence<J...>) {
    ((u_[D - 2 - J] = plus(up_.template get<J>().forward(u_[D - 1 - J]), enc_[D - 2 - J], skip_[D - 2 - J])), ...);
  }
  // From the top down: d u_i = up_j^T d u_{i-1}; d u_{i-1} is also the skip's gradient into enc_{i-1}.
  template <std::size_t... J>
  void decode_levels_backward(std::index_sequence<J...>) {
    constexpr std::size_t last = D - 2;  // j of the level nearest the output
    ((du_[J + 1] = up_.template get<last - J>().backward(du_[J])), ...);
  }
  // d enc_{D-1} given; d x_i = down_i^T d enc_i; d enc_{i-1} = d x_i + d u_{i-1}; d h0 -> d e_top.
  template <std::size_t... I>
  void encode_levels_backward(cview d, std::index_sequence<I...>) {
    ((d = down_step<D - 1 - I>(d)), ...);
    // d e_top += d h0 [N, 1, Sp]
    add_channel_sums(be_, d.data(), de_top_.data(), n_, 1, sp_);
  }
  template <std::size_t I>
  cview down_step(cview d_enc) {
    cview dx = down_.template get<I>().backward(d_enc);
    if constexpr (I == 0) return dx;
    else return plus(dx, du_[I - 1], dskip_[I - 1]);
  }
  cview plus(cview a, cview b, tensor<T, B>& buf) {
    buf.resize(a.shape());
    copy(be_, a, buf.view());
    axpy(be_, T(1), b, buf.view());
    return buf.cview();
  }

  shape latent_;
  std::size_t s_, sp_, f_, d_;
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  typename TimeEmbedding::template embedding<T, B, Index> time_;
  typename stacks::down down_;
  nn::linear<dynamic, dynamic, T, B> bottom_;
  leaky<T, B> act_{*ps_};
  typename stacks::up up_;
  nn::conv1d<Config::channels[0], 1, Config::kernel, T, B, 1, Config::kernel / 2> out_;
  std::optional<nn::linear<dynamic, dynamic, T, B>> proj_;
  std::size_t n_ = 0;
  shape z_shape_;
  std::array<cview, D> enc_, u_, du_;
  std::array<tensor<T, B>, D> skip_, dskip_;
  tensor<T, B> e_top_, e_bot_, h0_, b_, o_, eps_, de_top_, de_, dy_, dcond_;
};

}  // namespace cpdiff::models
