#pragma once
// generator_encoder: the condition encoder of a pipeline::lora_generator, chosen at run time by the kind of
// condition it was fitted on (train/conditioning.hpp's encoder contract):
//   text, vector   rows [N, D] pass through as the denoiser's condition (features computed beforehand)
//   images         rows [N, k H W], k grey style images of H x W laid end to end, through an encoder trained
//                  jointly with the denoiser -> feature [N, F] (F = generator_config::image_feature):
//                    "pixels"  models::vector_projector: a Linear on the pixels (the example's default; README:
//                              the style-image encoder's global pooling cannot tell rotate(90) from hflip)
//                    "conv"    models::style_image_encoder: the appendix's conv, conv, pool, Linear projector
// trainable() says whether the trainer steps parameters() (the identity's store is empty).
#include <cstdint>
#include <memory>
#include <string>

#include "cpdiff/core/error.hpp"
#include "cpdiff/models/condition_encoders.hpp"
#include "cpdiff/models/style_image_encoder.hpp"
#include "cpdiff/tensor/parameter_store.hpp"

namespace cpdiff::pipeline {

template <class B = cpu>
class generator_encoder {
 public:
  using value_type = float;
  using backend_type = B;
  using cview = tensor_view<const float, memory_space_t<B>>;
  using pixels_type = models::vector_projector<float, B>;
  using conv_type = models::style_image_encoder<models::style_encoder_default, float, B>;

  // The identity: features as given.
  explicit generator_encoder(B be = {}) : empty_(std::make_unique<parameter_store<float, B>>(be)) {}
  // A trained encoder of style images [k, H, W] into features of `feature_dim`; kind "pixels" or "conv".
  generator_encoder(const std::string& kind, shape images, std::size_t feature_dim, std::uint64_t seed, B be = {})
      : generator_encoder(be) {
    constexpr const char* where = "pipeline::generator_encoder";
    CPDIFF_CHECK(images.rank() == 3 && images.size() > 0, config_error, where,
                 "style images: expected [count, height, width], got ", images);
    images_ = images;
    if (kind == "pixels")
      pixels_ = std::make_unique<pixels_type>(images.size(), feature_dim, seed, 0, be);
    else if (kind == "conv")
      conv_ = std::make_unique<conv_type>(feature_dim, seed, images, be);
    else
      throw_error<config_error>(where, "image encoder '", kind, "' is not \"pixels\" or \"conv\"");
    kind_ = kind;
  }

  bool trainable() const { return pixels_ || conv_; }
  const std::string& kind() const { return kind_; }  // "identity", "pixels" or "conv"
  const shape& images() const { return images_; }      // [k, H, W] (empty for the identity)
  // The width of the denoiser's condition for input rows of `input_dim`.
  std::size_t feature_dim(std::size_t input_dim) const {
    return pixels_ ? pixels_->feature_dim() : conv_ ? conv_->feature_dim() : input_dim;
  }
  parameter_store<float, B>& parameters() {
    return pixels_ ? pixels_->parameters() : conv_ ? conv_->parameters() : *empty_;
  }

  // rows [N, D_in] -> features [N, D]
  cview forward(cview rows) { return pixels_ ? pixels_->forward(rows) : conv_ ? conv_->forward(rows) : rows; }
  // d features [N, D] -> the encoder's parameter gradients (added)
  void backward(cview d) {
    if (pixels_) pixels_->backward(d);
    if (conv_) conv_->backward(d);
  }

  // The configuration, in the encoder's weights file (tensor/weights_file.hpp refuses another).
  std::string describe() const {
    return "{\"model\": \"generator_encoder\", \"kind\": \"" + kind_ + "\", \"images\": [" +
           std::to_string(images_.rank() ? images_[0] : 0) + ", " + std::to_string(images_.rank() ? images_[1] : 0) +
           ", " + std::to_string(images_.rank() ? images_[2] : 0) + "], \"feature_dim\": " +
           std::to_string(feature_dim(images_.size())) + "}";
  }

 private:
  std::unique_ptr<parameter_store<float, B>> empty_;
  std::unique_ptr<pixels_type> pixels_;
  std::unique_ptr<conv_type> conv_;
  std::string kind_ = "identity";
  shape images_;
};

}  // namespace cpdiff::pipeline
