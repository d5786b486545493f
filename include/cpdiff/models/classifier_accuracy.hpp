#pragma once
// The fraction of images a classifier labels right, evaluated in batches (shared by models::lora_mlp and
// models::peft_classifier).
//   images [n, inputs] (host floats), labels [n] in [0, classes); forward(x [b, inputs]) -> logits [b, classes]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::models {

template <class T, class B, class Forward>
double classifier_accuracy(const B& be, tensor<T, B>& staging, std::span<const float> images,
                           std::span<const std::int64_t> labels, std::size_t inputs, std::size_t classes,
                           std::size_t batch, const char* where, Forward&& forward) {
  CPDIFF_CHECK(images.size() == labels.size() * inputs && !labels.empty() && batch > 0, shape_error, where,
               images.size(), " pixel values and ", labels.size(), " labels do not form [n, ", inputs,
               "] images with n > 0 labels");
  std::size_t correct = 0;
  std::vector<T> host;
  for (std::size_t b = 0; b < labels.size(); b += batch) {
    const std::size_t n = std::min(batch, labels.size() - b);
    host.assign(images.begin() + std::ptrdiff_t(b * inputs), images.begin() + std::ptrdiff_t((b + n) * inputs));
    // x [n, inputs] -> logits [n, classes]; a row is right when its largest logit is at its label
    staging.resize({n, inputs});
    from_host(be, std::span<const T>(host), staging.view());
    const std::vector<T> logits = to_host(be, forward(staging.cview()));
    for (std::size_t i = 0; i < n; ++i) {
      const T* row = logits.data() + i * classes;
      correct += std::max_element(row, row + classes) - row == labels[b + i] ? 1 : 0;
    }
  }
  return double(correct) / double(labels.size());
}

}  // namespace cpdiff::models
