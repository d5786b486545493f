#pragma once
// Tiny models and synthetic data for the trainer tests (each step takes microseconds).
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "cpdiff/core/rng.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/train/conditioning.hpp"

namespace cpdiff::testing {

// n = 24 -> padded 28 -> latent [3, 6]
struct tiny_ae_cfg {
  static constexpr std::size_t fold = 2, kernel = 3;
  static constexpr std::array<std::size_t, 2> enc{2, 3}, dec{3, 2};
};
// A different architecture (other names and shapes): for the wrong-model checks.
struct other_ae_cfg {
  static constexpr std::size_t fold = 2, kernel = 3;
  static constexpr std::array<std::size_t, 3> enc{2, 2, 3}, dec{3, 2, 2};
};
struct tiny_unet_cfg {
  static constexpr std::array<std::size_t, 4> channels{2, 3, 3, 4};
  static constexpr std::size_t kernel = 3;
};

using tiny_ae = models::pdiff_autoencoder<tiny_ae_cfg>;
using tiny_unet = models::pdiff_unet<tiny_unet_cfg>;

// [M, n] rows on a circle in a 2-D subspace, x_i = 1.4 (cos th_i u + sin th_i v) + a little noise (about
// unit variance): a one-parameter family an autoencoder can learn (the encoder's InstanceNorm drops each
// row's own scale, so the family keeps it fixed), and the starting loss (~1) leaves room to show it.
inline tensor<float, cpu> low_rank_rows(std::size_t m, std::size_t n, std::uint64_t seed) {
  tensor<float, cpu> x({m, n});
  for (std::size_t i = 0; i < m; ++i) {
    const float th = 6.2831853f * philox_uniform(seed, 1, i);
    for (std::size_t j = 0; j < n; ++j) {
      const float u = std::sin(0.5f * static_cast<float>(j)), v = std::cos(0.3f * static_cast<float>(j) + 1.f);
      x.data()[i * n + j] = 1.4f * (std::cos(th) * u + std::sin(th) * v) + 0.05f * philox_normal(seed, 3, i * n + j);
    }
  }
  return x;
}

// [M, C, L] latents in (-1, 1): one fixed pattern per condition class (i % classes), as an
// autoencoder's Tanh latents of a few tasks' checkpoints would cluster.
inline tensor<float, cpu> class_latents(std::size_t m, std::size_t c, std::size_t l, std::size_t classes,
                                        std::uint64_t seed) {
  tensor<float, cpu> z({m, c, l});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t k = 0; k < c * l; ++k)
      z.data()[i * c * l + k] = 0.8f * std::tanh(philox_normal(seed, 7, (i % classes) * c * l + k)) +
                                0.02f * philox_normal(seed, 8, i * c * l + k);
  return z;
}

// 24 latents [2, 3] of 3 classes; class k's condition is table row k (one-hot, D = 4).
struct tiny_problem {
  tensor<float, cpu> z = class_latents(24, 2, 3, 3, 5);
  tensor<float, cpu> table{{3, 4}};
  std::vector<std::int64_t> ids = std::vector<std::int64_t>(24);
  tiny_problem() {
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t j = 0; j < 4; ++j) table.data()[k * 4 + j] = j == k ? 1.f : 0.f;
    for (std::size_t i = 0; i < 24; ++i) ids[i] = static_cast<std::int64_t>(i % 3);
  }
  train::condition_set<float> conditions() const {
    return train::condition_set<float>::by_id(std::span<const std::int64_t>(ids), table.cview());
  }
};

// A jointly trained condition encoder: one linear layer D_in -> D with its own store.
template <std::size_t In, std::size_t Out>
struct linear_condition_encoder {
  using cview = tensor_view<const float>;
  std::unique_ptr<parameter_store<float, cpu>> ps = std::make_unique<parameter_store<float, cpu>>();
  rng g{99, 0};
  nn::linear<In, Out> fc{*ps, "fc", g};
  cview forward(cview rows) { return fc.forward(rows); }
  void backward(cview d) { fc.backward(d); }
  parameter_store<float, cpu>& parameters() { return *ps; }
};

// A fresh, empty folder under the system's temporary folder, removed at scope exit.
struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("cpdiff_train_" + tag + "_" + std::to_string(static_cast<long long>(::getpid())));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

// Bitwise equality (NaN-safe, -0 != +0) of n values, or of two views of the same shape.
template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}
template <class V>
bool same_bits(const V& a, const V& b) {
  return a.shape() == b.shape() && same_bits(a.data(), b.data(), a.size());
}

}  // namespace cpdiff::testing
