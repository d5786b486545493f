#pragma once
// style_image_encoder<Config>: the appendix's condition projector (SPEC.md "Condition by bottom embedding"):
// two conv layers -> average pooling -> Linear, turning a handful of style images into one condition feature.
//
//   images [N, k, H, W] (one channel) or [N, k, Cin, H, W]: k example images per condition
//   x [N k, Cin, H, W] -> Conv2d(Cin -> c1, K, stride 1, pad K/2) -> SiLU
//                      -> Conv2d(c1 -> c2, K, stride 2, pad K/2) -> SiLU     [N k, c2, H2, W2]
//                      -> global average pool                                [N k, c2]
//   mean over the k images of a condition                                    [N, c2]
//   Linear(c2 -> D)                                                          feature [N, D]
// (The mean is taken before the Linear: the same as averaging the k features, k times cheaper.)
// SiLU rather than LeakyReLU: smooth, so the projector's gradient has no kinks (and gradchecks stay exact).
// Trained jointly with the denoiser: forward, then backward(d feature) adds into this model's own store
// (step it with its own optimiser, or with the denoiser's over both stores).
// Given the shape of one condition's images at construction, forward also takes them flattened, rows
// [N, k Cin H W]: the form in which train::condition_set stores conditions for train::diffusion_trainer.
#include <array>
#include <cstdint>
#include <memory>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/conv2d.hpp"
#include "cpdiff/nn/global_avg_pool.hpp"
#include "cpdiff/nn/linear.hpp"

namespace cpdiff::models {

// Grayscale 28x28 style images (the appendix's scale); a user config is any struct with these four members.
struct style_encoder_default {
  static constexpr std::size_t in_channels = 1, c1 = 32, c2 = 64, kernel = 3;
};

template <class Config = style_encoder_default, class T = float, class B = cpu>
class style_image_encoder {
  static_assert(Config::in_channels > 0 && Config::c1 > 0 && Config::c2 > 0,
                "cpdiff::models::style_image_encoder: channel counts must be positive");
  static_assert(Config::kernel % 2 == 1, "cpdiff::models::style_image_encoder: the kernel must be odd (pad K/2)");
  static constexpr std::size_t cin = Config::in_channels, c2 = Config::c2, k = Config::kernel;

 public:
  using value_type = T;
  using backend_type = B;
  using cview = tensor_view<const T, memory_space_t<B>>;

  // feature_dim: D, the size of the condition feature (a bottom_unet adds it to its bottom, projecting if needed).
  // images: optionally the shape of one condition's images, [k, H, W] or [k, Cin, H, W], to accept flat rows.
  style_image_encoder(std::size_t feature_dim, std::uint64_t seed, shape images = {}, B be = {})
      : be_(be), ps_(std::make_unique<parameter_store<T, B>>(be)), g_{seed, 0}, conv1_(*ps_, "conv1", g_),
        conv2_(*ps_, "conv2", g_), proj_(*ps_, "proj", g_, c2, check_dim(feature_dim)), images_(images) {
    CPDIFF_CHECK(images.rank() == 0 || (images.size() > 0 && ((images.rank() == 3 && cin == 1) ||
                                                              (images.rank() == 4 && images[1] == cin))),
                 config_error, "models::style_image_encoder", "images: expected [k, H, W] (one channel) or [k, ",
                 cin, ", H, W], got ", images);
  }

  parameter_store<T, B>& parameters() { return *ps_; }
  std::size_t feature_dim() const { return proj_.out(); }

  // images [N, k, H, W] or [N, k, Cin, H, W] (or rows [N, k Cin H W], see above) -> feature [N, D]
  cview forward(cview images) {
    constexpr const char* where = "models::style_image_encoder::forward";
    if (images.rank() == 2 && images_.rank() != 0) {
      CPDIFF_CHECK(images.dim(1) == images_.size(), shape_error, where, "rows: expected [N, ", images_.size(),
                   "] (images ", images_, " flattened), got ", images.shape());
      std::size_t dims[shape::max_rank] = {images.dim(0)};
      for (std::size_t i = 0; i < images_.rank(); ++i) dims[i + 1] = images_[i];
      return forward_images(images, images.reshape(shape::from_range(dims, dims + images_.rank() + 1)));
    }
    return forward_images(images, images);
  }
  // d feature [N, D] -> parameter gradients (added); returns d images (the input's shape).
  cview backward(cview dfeature) {
    constexpr const char* where = "models::style_image_encoder::backward";
    CPDIFF_CHECK(n_ > 0, shape_error, where, "backward called before forward");
    expect_shape(dfeature, shape{n_, feature_dim()}, where, "d(feature)");
    cview dm = proj_.backward(dfeature);  // [N, c2]
    // d p[n k + j] = d m[n] / k   [N k, c2]
    dp_.resize({n_ * per_, c2});
    for (std::size_t i = 0; i < n_; ++i)
      copy_rows(be_, dm.data() + i * c2, 0, dp_.data() + i * per_ * c2, c2, per_, c2);  // row i, k times
    scale(be_, dp_.view(), T(1) / T(per_));
    cview d = pool_.backward(dp_.cview().reshape({n_ * per_, c2, 1, 1}));
    d = conv1_.backward(act1_.backward(conv2_.backward(act2_.backward(d))));
    return d.reshape(in_shape_);
  }

 private:
  cview forward_images(cview input, cview images) {
    constexpr const char* where = "models::style_image_encoder::forward";
    CPDIFF_CHECK((images.rank() == 4 && cin == 1) || (images.rank() == 5 && images.dim(2) == cin), shape_error, where,
                 "images: expected [N, k, H, W] (one channel) or [N, k, ", cin, ", H, W], got ", images.shape());
    expect_nonempty(images, where, "images");
    const std::size_t h = images.dim(images.rank() - 2), w = images.dim(images.rank() - 1);
    in_shape_ = input.shape();
    n_ = images.dim(0);
    per_ = images.dim(1);
    // [N k, c2, H2, W2] -> pooled [N k, c2]
    cview x = images.reshape({n_ * per_, cin, h, w});
    cview p = pool_.forward(act2_.forward(conv2_.forward(act1_.forward(conv1_.forward(x)))));
    p = p.reshape({n_ * per_, c2});
    // m[n] = (1/k) sum_j p[n k + j]   [N, c2]
    mean_.resize({n_, c2});
    fill(be_, mean_.view(), T(0));
    for (std::size_t i = 0; i < n_; ++i) add_column_sums(be_, p.slice(i * per_, (i + 1) * per_), mean_.view()[i]);
    scale(be_, mean_.view(), T(1) / T(per_));
    return proj_.forward(mean_.cview());
  }

  static std::size_t check_dim(std::size_t d) {
    CPDIFF_CHECK(d > 0, config_error, "models::style_image_encoder", "feature_dim must be positive");
    return d;
  }

  B be_;
  std::unique_ptr<parameter_store<T, B>> ps_;
  rng g_;
  nn::conv2d<cin, Config::c1, k, T, B, 1, k / 2> conv1_;
  nn::silu<T, B> act1_{*ps_};
  nn::conv2d<Config::c1, c2, k, T, B, 2, k / 2> conv2_;
  nn::silu<T, B> act2_{*ps_};
  nn::global_avg_pool<T, B> pool_{*ps_};
  nn::linear<c2, dynamic, T, B> proj_;
  shape images_, in_shape_;
  std::size_t n_ = 0, per_ = 0;
  tensor<T, B> mean_, dp_;
};

}  // namespace cpdiff::models
