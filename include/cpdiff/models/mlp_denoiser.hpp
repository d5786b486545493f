#pragma once
// mlp_denoiser<Config, TimeEmbedding>: a conditional MLP denoiser for small or flat latents (a few to a few
// hundred numbers per sample), with the interface of pdiff_unet and bottom_unet, so the trainers, samplers,
// EMA, checkpoints and classifier-free guidance take it as they take those:
//   forward(z, t, cond) -> eps_hat (shaped like z),  backward(d eps_hat) -> d cond.
//
//   x   = [flatten(z) | cond]                         [N, S + D]   S = the latent's size per sample
//   h_0 = Linear(S + D -> W)(x) + e(t)                [N, W]       e: the timestep embedding policy, width W
//   h_i = h_{i-1} + Linear(W -> W)(SiLU(Linear(W -> W)(SiLU(h_{i-1})))),  i = 1..depth   (pre-activation)
//   eps_hat = Linear(W -> S)(SiLU(h_depth)), reshaped like z
//
// Why it exists: the U-Nets start with a normalisation (p-diff's InstanceNorm removes each sample's mean and
// scale over the sequence), so they cannot see the level of x_t of a tiny latent, which is what the optimal
// eps depends on. There is no normalisation here: every sample's level and scale reach the output, and a
// sample never depends on the others in its batch. For small problems, unit tests and baselines.
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/models/time_embedding.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/sequential.hpp"

namespace cpdiff::models {

// A user config is any struct with `width` (W, also the timestep embedding's) and `depth` (residual blocks).
struct mlp_denoiser_small {
  static constexpr std::size_t width = 128, depth = 2;
};

template <class C>
concept mlp_denoiser_config = requires {
  { C::width } -> std::convertible_to<std::size_t>;
  { C::depth } -> std::convertible_to<std::size_t>;
} && (C::width > 0) && (C::depth > 0);

namespace detail {
// y = h + Linear(SiLU(Linear(SiLU(h)))); members named "<name>.1" and "<name>.3" (the Linears).
template <std::size_t W, class T, class B>
class mlp_residual_block {
 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  mlp_residual_block(parameter_store<T, B>& ps, const std::string& name, rng& g)
      : be_(ps.backend()), f_(ps, name, g) {}

  cview forward(cview h) {
    cview f = f_.forward(h);
    y_.resize(h.shape());
    copy(be_, h, y_.view());
    axpy(be_, T(1), f, y_.view());
    return y_.cview();
  }
  // dh = dy + f'^T dy
  cview backward(cview dy) {
    cview df = f_.backward(dy);
    dx_.resize(dy.shape());
    copy(be_, df, dx_.view());
    axpy(be_, T(1), dy, dx_.view());
    return dx_.cview();
  }
  template <class F>
  void for_each_parameter(F&& fn) { f_.for_each_parameter(fn); }

 private:
  B be_;
  nn::sequential<nn::silu<T, B>, nn::linear<W, W, T, B>, nn::silu<T, B>, nn::linear<W, W, T, B>> f_;
  tensor<T, B> y_, dx_;
};

template <std::size_t W, class T, class B, class Seq>
struct mlp_blocks;
template <std::size_t W, class T, class B, std::size_t... I>
struct mlp_blocks<W, T, B, std::index_sequence<I...>> {
  using type = nn::sequential<std::conditional_t<I == I, mlp_residual_block<W, T, B>, void>...>;
};
}  // namespace detail

template <class Config = mlp_denoiser_small, class TimeEmbedding = sinusoidal<>, class T = float, class B = cpu,
          class Index = std::int64_t>
  requires mlp_denoiser_config<Config>
class mlp_denoiser {
  static constexpr std::size_t W = Config::width;

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using view = tensor_view<T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;
  static constexpr std::size_t width = W, depth = Config::depth;

  // latent: the shape of one sample's latent ([C, L] or [S]); cond_dim: D; timesteps: T of the schedule.
  mlp_denoiser(shape latent, std::size_t cond_dim, std::size_t timesteps, std::uint64_t seed, B be = {})
      : latent_(latent), s_(check_sizes(latent, cond_dim, timesteps)), d_(cond_dim), be_(be),
        ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0},
        time_(*ps_, "time_encode", g_, timesteps, W), in_(*ps_, "in", g_, s_ + d_, W), blocks_(*ps_, "blocks", g_),
        out_(*ps_, "out", g_, W, s_) {}

  parameter_store<T, B>& parameters() { return *ps_; }
  const shape& latent_shape() const { return latent_; }
  std::size_t cond_dim() const { return d_; }

  // z [N, latent...], t [N], cond [N, D] -> eps_hat [N, latent...]
  cview forward(cview z, tview t, cview cond) {
    constexpr const char* where = "models::mlp_denoiser::forward";
    CPDIFF_CHECK(z.rank() == latent_.rank() + 1 && z.shape().tail(1) == latent_, shape_error, where,
                 "latent: expected [N] + ", latent_, ", got ", z.shape());
    expect_nonempty(z, where, "latent");
    const std::size_t n = z.dim(0);
    CPDIFF_CHECK(t.rank() == 1 && t.dim(0) == n, shape_error, where, "timesteps: expected [", n, "], got ", t.shape());
    CPDIFF_CHECK(cond.rank() == 2 && cond.dim(0) == n && cond.dim(1) == d_, shape_error, where,
                 "condition: expected [", n, ", ", d_, "], got ", cond.shape());
    n_ = n;
    z_shape_ = z.shape();
    // x [N, S + D] = [flatten(z) | cond]
    x_.resize({n, s_ + d_});
    copy_rows(be_, z.data(), s_, x_.data(), s_ + d_, n, s_);
    copy_rows(be_, cond.data(), d_, x_.data() + s_, s_ + d_, n, d_);
    cview e = time_.forward(t);  // [N, W]
    // h0 [N, W] = in(x) + e(t)
    h0_.resize({n, W});
    copy(be_, nn::in_member("in", [&] { return in_.forward(x_.cview()); }), h0_.view());
    axpy(be_, T(1), e, h0_.view());
    cview h = blocks_.forward(h0_.cview());
    return nn::in_member("out", [&] { return out_.forward(act_.forward(h)); }).reshape(z.shape());
  }

  // d eps_hat [N, latent...] -> parameter gradients; returns d cond [N, D].
  cview backward(cview deps) {
    constexpr const char* where = "models::mlp_denoiser::backward";
    CPDIFF_CHECK(n_ > 0, shape_error, where, "backward called before forward");
    expect_shape(deps, z_shape_, where, "d(eps_hat)");
    cview dout = nn::in_member("out", [&] { return out_.backward(deps.reshape({n_, s_})); });
    cview dh = blocks_.backward(act_.backward(dout));                  // d h0 [N, W]
    time_.backward(dh);                                                // d e = d h0
    cview dx = nn::in_member("in", [&] { return in_.backward(dh); });  // [N, S + D]
    dcond_.resize({n_, d_});
    copy_rows(be_, dx.data() + s_, s_ + d_, dcond_.data(), d_, n_, d_);
    return dcond_.cview();
  }

 private:
  static std::size_t check_sizes(const shape& latent, std::size_t cond_dim, std::size_t timesteps) {
    CPDIFF_CHECK(latent.rank() >= 1 && latent.rank() < shape::max_rank && latent.size() > 0 && cond_dim > 0 &&
                     timesteps > 0,
                 config_error, "models::mlp_denoiser", "latent ", latent, ", cond_dim ", cond_dim, " and timesteps ",
                 timesteps, " must be non-empty (latent of rank 1..", shape::max_rank - 1, ")");
    return latent.size();
  }

  shape latent_;
  std::size_t s_, d_;
  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  typename TimeEmbedding::template embedding<T, B, Index> time_;
  nn::linear<dynamic, W, T, B> in_;
  typename detail::mlp_blocks<W, T, B, std::make_index_sequence<Config::depth>>::type blocks_;
  nn::silu<T, B> act_{*ps_};
  nn::linear<W, dynamic, T, B> out_;
  std::size_t n_ = 0;
  shape z_shape_;
  tensor<T, B> x_, h0_, dcond_;
};

}  // namespace cpdiff::models
