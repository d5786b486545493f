#pragma once
// Losses: the end of a forward pass, where the gradient starts.
//   mse_loss:                 pred [...], target [...] (same shape)  -> mean (pred - target)^2
//   cross_entropy<T, B, L>:   logits [N, C], target [N] of integer labels L in [0, C)
//                             -> mean_i -log softmax(logits_i)[target_i]
// They take two inputs and return a number, so they do not fit the one-input `layer` concept:
//   forward(pred, target) -> double, the loss (NaN / Inf inputs give a NaN / Inf loss rather than an
//                            error: the training guard checks the loss and names the step)
//   backward(scale = 1)   -> view of d(scale * loss)/d(pred), a buffer the loss owns
// forward caches views of its inputs: keep them alive and unchanged until backward.
// PyTorch's reduction="mean" only; cross_entropy has no ignore_index, class weights or smoothing.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/backend/policy.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::nn {

template <class T = float, class B = cpu>
class mse_loss {
 public:
  using value_type = T;
  using backend_type = B;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;

  explicit mse_loss(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit mse_loss(const B& be) : be_(be) {}
  mse_loss()
    requires stateless_backend<B>
  = default;

  // L = 1/n sum_i (pred_i - target_i)^2, n = pred.size()
  double forward(cview pred, cview target) {
    CPDIFF_CHECK(pred.shape() == target.shape(), shape_error, "nn::mse_loss::forward", "prediction ", pred.shape(),
                 " and target ", target.shape(), " differ in shape");
    expect_nonempty(pred, "nn::mse_loss::forward", "prediction");
    pred_ = pred;
    target_ = target;
    return mse_forward(be_, pred.data(), target.data(), pred.size());
  }

  cview backward(T scale = T(1)) {
    CPDIFF_CHECK(pred_.data() != nullptr, shape_error, "nn::mse_loss::backward", "called before forward");
    dpred_.resize(pred_.shape());
    // dpred = scale * 2 (pred - target) / n
    mse_backward(be_, pred_.data(), target_.data(), dpred_.data(), pred_.size(), scale);
    return dpred_.cview();
  }

 private:
  B be_{};
  cview pred_, target_;
  tensor<T, B> dpred_;
};

template <class T = float, class B = cpu, class Label = std::int64_t>
class cross_entropy {
  static_assert(std::is_integral_v<Label>,
                "cpdiff::nn::cross_entropy: Label must be an integer type (class indices), e.g. std::int64_t");

 public:
  using value_type = T;
  using backend_type = B;
  using label_type = Label;
  using view = tensor_view<T, memory_space_t<B>>;
  using cview = tensor_view<const T, memory_space_t<B>>;
  using label_view = tensor_view<const Label, memory_space_t<B>>;

  explicit cross_entropy(const parameter_store<T, B>& ps) : be_(ps.backend()) {}
  explicit cross_entropy(const B& be) : be_(be) {}
  cross_entropy()
    requires stateless_backend<B>
  = default;

  // L = 1/N sum_i (logsumexp_j logits[i, j] - logits[i, target_i])
  double forward(cview logits, label_view target) {
    CPDIFF_CHECK(logits.rank() == 2 && logits.dim(0) > 0 && logits.dim(1) > 0, shape_error,
                 "nn::cross_entropy::forward", "logits: expected [N, C] with N, C > 0, got shape ", logits.shape());
    CPDIFF_CHECK(target.rank() == 1 && target.dim(0) == logits.dim(0), shape_error, "nn::cross_entropy::forward",
                 "target: expected shape [", logits.dim(0), "] for logits ", logits.shape(), ", got ", target.shape());
    const std::size_t N = logits.dim(0), C = logits.dim(1);
    const ops::invalid_label bad = find_invalid_label(be_, target.data(), N, C);
    CPDIFF_CHECK(bad.index < 0, shape_error, "nn::cross_entropy::forward", "target[", bad.index, "] = ", bad.value,
                 " is not a class index in [0, ", C, ") for logits ", logits.shape());
    target_ = target;
    prob_.resize(logits.shape());
    // prob = softmax(logits) [N, C]; L as above
    return cross_entropy_forward(be_, logits.data(), target.data(), prob_.data(), N, C);
  }

  cview backward(T scale = T(1)) {
    CPDIFF_CHECK(target_.data() != nullptr, shape_error, "nn::cross_entropy::backward", "called before forward");
    dlogits_.resize(prob_.shape());
    // dlogits = scale * (softmax(logits) - onehot(target)) / N
    cross_entropy_backward(be_, prob_.data(), target_.data(), dlogits_.data(), prob_.dim(0), prob_.dim(1), scale);
    return dlogits_.cview();
  }

  // softmax(logits) [N, C] from the last forward (for accuracy, sampling).
  cview probabilities() const { return prob_.cview(); }

 private:
  B be_{};
  label_view target_;
  tensor<T, B> prob_, dlogits_;
};

}  // namespace cpdiff::nn
