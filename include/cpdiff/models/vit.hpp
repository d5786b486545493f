#pragma once
// vit<Config>: a Vision Transformer classifier laid out and named as Hugging Face's ViTForImageClassification, so
// its weights and LoRA adapters carry the keys PyTorch and PEFT use:
//   vit.embeddings.*              nn::vit_embeddings (patch projection, cls_token, position_embeddings)
//   vit.encoder.layer.{i}.*       nn::transformer_block, i < depth (attention.attention.{query,key,value}, ...)
//   vit.layernorm                 LayerNorm(dim, eps 1e-12)
//   classifier                    Linear(dim -> classes), on the class token
//
//   x [N, C, H, W] -> e = embeddings(x)                 [N, P + 1, D]
//                  -> h = layer_{depth-1}(... layer_0(e))  [N, P + 1, D]
//                  -> logits = classifier(layernorm(h)[:, 0, :])   [N, classes]
// A config is any struct with the members of vit_fashion_small (compile-time sizes).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/nn/layer_norm.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/sequential.hpp"
#include "cpdiff/nn/transformer_block.hpp"
#include "cpdiff/nn/vit_embeddings.hpp"

namespace cpdiff::models {

// A small ViT for Fashion-MNIST: 28x28 grey images in 16 patches of 7x7.
struct vit_fashion_small {
  static constexpr std::size_t channels = 1, image = 28, patch = 7, dim = 64, depth = 4, heads = 4, mlp_dim = 128,
                               classes = 10;
};

template <class C>
concept vit_config = requires {
  { C::channels } -> std::convertible_to<std::size_t>;
  { C::image } -> std::convertible_to<std::size_t>;
  { C::patch } -> std::convertible_to<std::size_t>;
  { C::dim } -> std::convertible_to<std::size_t>;
  { C::depth } -> std::convertible_to<std::size_t>;
  { C::heads } -> std::convertible_to<std::size_t>;
  { C::mlp_dim } -> std::convertible_to<std::size_t>;
  { C::classes } -> std::convertible_to<std::size_t>;
} && C::depth > 0 && C::classes > 0;

namespace detail {
template <class C, class T, class B, class Seq>
struct vit_layers;
template <class C, class T, class B, std::size_t... I>
struct vit_layers<C, T, B, std::index_sequence<I...>> {
  using type = nn::sequential<std::conditional_t<I == I, nn::transformer_block<C::dim, C::heads, C::mlp_dim, T, B>, void>...>;
};
}  // namespace detail

template <class Config = vit_fashion_small, class T = float, class B = cpu>
  requires vit_config<Config>
class vit {
  static constexpr std::size_t D = Config::dim;
  using embeddings_type = nn::vit_embeddings<Config::channels, Config::image, Config::patch, D, T, B>;
  using encoder_type = typename detail::vit_layers<Config, T, B, std::make_index_sequence<Config::depth>>::type;

 public:
  using value_type = T;
  using backend_type = B;
  using config = Config;
  using cview = tensor_view<const T, memory_space_t<B>>;
  static constexpr std::size_t tokens = embeddings_type::tokens;
  static constexpr std::size_t inputs = Config::channels * Config::image * Config::image, classes = Config::classes;
  // The shape forward takes for N images: [N, C, H, W].
  static shape input_shape(std::size_t n) { return {n, Config::channels, Config::image, Config::image}; }

  explicit vit(std::uint64_t seed, B be = {})
      : ps_(std::make_unique<parameter_store<T, B>>(be)), be_(be), g_{seed, 0},
        embeddings_(*ps_, "vit.embeddings", g_), encoder_(*ps_, "vit.encoder.layer", g_),
        norm_(*ps_, "vit.layernorm", g_, 1e-12), classifier_(*ps_, "classifier", g_) {}

  parameter_store<T, B>& parameters() { return *ps_; }
  encoder_type& encoder() { return encoder_; }
  std::string describe() const {
    std::ostringstream s;
    s << "{\"model\": \"vit\", \"channels\": " << Config::channels << ", \"image\": " << Config::image
      << ", \"patch\": " << Config::patch << ", \"dim\": " << D << ", \"depth\": " << Config::depth
      << ", \"heads\": " << Config::heads << ", \"mlp_dim\": " << Config::mlp_dim << ", \"classes\": "
      << Config::classes << "}";
    return s.str();
  }

  // f(linear&) for every Linear of the model (each layer's six projections, then the classifier): where
  // lora::attach (nn/lora_attach.hpp) finds PEFT's target_modules.
  template <class F>
  void for_each_linear(F&& f) {
    for_each_layer([&](auto& block) { block.for_each_linear(f); });
    f(classifier_);
  }

  // x [N, C, H, W] -> logits [N, classes]
  cview forward(cview x) {
    const cview e = nn::in_member("vit.embeddings", [&] { return embeddings_.forward(x); });
    const cview h = encoder_.forward(e);  // names its members "vit.encoder.layer.<i>"
    const cview z = nn::in_member("vit.layernorm", [&] { return norm_.forward(h); });
    n_ = x.dim(0);
    // cls [N, D] = z[:, 0, :]
    cls_.resize({n_, D});
    copy_rows(be_, z.data(), tokens * D, cls_.data(), D, n_, D);
    return nn::in_member("classifier", [&] { return classifier_.forward(cls_.cview()); });
  }

  // d logits [N, classes] -> d x [N, C, H, W]; every parameter's gradient added into the store.
  cview backward(cview dlogits) {
    expect_forward_ran(n_ > 0, "models::vit::backward");
    const cview dcls = nn::in_member("classifier", [&] { return classifier_.backward(dlogits); });
    // dz [N, P+1, D]: the class token's rows, zeros elsewhere
    dz_.resize({n_, tokens, D});
    fill(be_, dz_.view(), T(0));
    copy_rows(be_, dcls.data(), D, dz_.data(), tokens * D, n_, D);
    const cview dh = nn::in_member("vit.layernorm", [&] { return norm_.backward(dz_.cview()); });
    const cview de = encoder_.backward(dh);
    return nn::in_member("vit.embeddings", [&] { return embeddings_.backward(de); });
  }

 private:
  template <class F>
  void for_each_layer(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(encoder_.template get<I>()), ...); }
    (std::make_index_sequence<Config::depth>{});
  }

  std::unique_ptr<parameter_store<T, B>> ps_;
  B be_;
  rng g_;
  embeddings_type embeddings_;
  encoder_type encoder_;
  nn::layer_norm<D, T, B> norm_;
  nn::linear<D, Config::classes, T, B> classifier_;
  tensor<T, B> cls_, dz_;
  std::size_t n_ = 0;
};

}  // namespace cpdiff::models
