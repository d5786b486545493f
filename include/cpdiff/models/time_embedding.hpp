#pragma once
// Timestep embeddings, a policy of the U-Nets: each maps per-sample timesteps t [N] to a vector [N, dim]
// that the U-Net adds to the input of every block (p-diff). Both have the same interface:
//   ctor (store, name, rng, timesteps, dim);  forward(t [N]) -> [N, dim];  backward(d [N, dim]) (adds grads)
//
// learned_time_embedding: p-diff's nn.Embedding(T, dim) table, one row per timestep, drawn from N(0, 1).
// sinusoidal_time_embedding<F, H>: F sinusoidal features of t (F/2 frequencies 10000^(-i/(F/2-1)), sin then
// cos) -> Linear(F, H) -> SiLU -> Linear(H, dim): independent of T, smooth in t.
//
// Which to choose: the table is p-diff's (the PyTorch parity fixtures use it), but each of its rows learns only
// from the samples drawn at its own t (1/T of them), and it adds N(0, 1) values of its own to a latent in
// [-1, 1]. At small t, where eps_hat must recover (x_t - sqrt(acp) z0) / sqrt(1 - acp) from x_t, that swamps
// the signal: on the example's ViT styles after 10,000 steps the bottom U-Net's eps MSE was 1.01 at t = 0, 0.91
// at t = 10 and 0.34 at t = 100 with the table, 0.55 / 0.049 / 0.017 with sinusoidal<> (README, "The paper's
// U-Nets"). Train the U-Nets with sinusoidal<> unless you need p-diff's weights layout.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

template <class T = float, class B = cpu, class Index = std::int64_t>
class learned_time_embedding {
 public:
  using cview = tensor_view<const T, memory_space_t<B>>;
  using tview = tensor_view<const Index, memory_space_t<B>>;

  // Table [timesteps, dim] ~ N(0, 1), PyTorch's Embedding init.
  learned_time_embedding(parameter_store<T, B>& ps, const std::string& name, rng& g, std::size_t timesteps,
                         std::size_t dim)
      : ps_(&ps), be_(ps.backend()), steps_(timesteps), dim_(dim) {
    w_ = ps.add(name + ".weight", {timesteps, dim});
    fill_normal(be_, ps.value(w_), T(0), T(1), g.seed, g.take_stream());
  }
  std::size_t dim() const { return dim_; }

  // t [N] -> table[t] [N, dim]
  cview forward(tview t) {
    const auto bad = find_index_out_of_range(be_, t.data(), t.size(), steps_);
    CPDIFF_CHECK(!bad, shape_error, "models::learned_time_embedding::forward", "timestep ",
                 bad ? bad->value : 0, " at position ", bad ? bad->position : 0, " is outside [0, ", steps_, ")");
    t_ = t;
    y_.resize({t.size(), dim_});
    embedding_gather(be_, t.data(), t.size(), ps_->value(w_).data(), dim_, y_.data());
    return y_.cview();
  }
  // table[t_n] += d[n]
  void backward(cview d) {
    expect_shape(d, y_.shape(), "models::learned_time_embedding::backward", "d(embedding)");
    if (ps_->entry(w_).trainable) embedding_scatter_add(be_, t_.data(), t_.size(), d.data(), dim_, ps_->grad(w_).data());
  }

 private:
  parameter_store<T, B>* ps_;
  B be_;
  std::size_t steps_, dim_;
  param_id w_;
  tview t_;
  tensor<T, B> y_;
};

template <std::size_t F = 128, std::size_t H = 256>
struct sinusoidal {
  static_assert(F % 2 == 0 && F >= 4, "cpdiff::models::sinusoidal: F must be even and at least 4");
  template <class T, class B, class Index>
  class embedding {
   public:
    using cview = tensor_view<const T, memory_space_t<B>>;
    using tview = tensor_view<const Index, memory_space_t<B>>;

    embedding(parameter_store<T, B>& ps, const std::string& name, rng& g, std::size_t /*timesteps*/, std::size_t dim)
        : be_(ps.backend()), dim_(dim), fc1_(ps, name + ".0", g), act_(ps), fc2_(ps, name + ".2", g, H, dim) {}
    std::size_t dim() const { return dim_; }

    cview forward(tview t) {
      // features [N, F]: sin(t w_i) for i < F/2, then cos(t w_i)
      const std::vector<Index> th = to_host(be_, t);
      std::vector<T> f(th.size() * F);
      constexpr std::size_t half = F / 2;
      for (std::size_t n = 0; n < th.size(); ++n)
        for (std::size_t i = 0; i < half; ++i) {
          const double w = std::exp(-std::log(10000.0) * double(i) / double(half - 1));
          f[n * F + i] = T(std::sin(double(th[n]) * w));
          f[n * F + half + i] = T(std::cos(double(th[n]) * w));
        }
      feat_.resize({th.size(), F});
      from_host(be_, std::span<const T>(f), feat_.view());
      return fc2_.forward(act_.forward(fc1_.forward(feat_.cview())));
    }
    void backward(cview d) { fc1_.backward(act_.backward(fc2_.backward(d))); }

   private:
    B be_;
    std::size_t dim_;
    nn::linear<F, H, T, B> fc1_;
    nn::silu<T, B> act_;
    nn::linear<H, dynamic, T, B> fc2_;
    tensor<T, B> feat_;
  };
};

// The learned table as a policy, for symmetry with sinusoidal<F, H>.
struct learned {
  template <class T, class B, class Index>
  using embedding = learned_time_embedding<T, B, Index>;
};

}  // namespace cpdiff::models
