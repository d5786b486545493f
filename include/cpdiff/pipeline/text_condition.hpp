#pragma once
// text_condition: a frozen text encoder for task descriptions, standing in for the paper's frozen CLIP
// text encoder (SPEC.md: the NLP path concatenates a 512-d text feature). A hashed bag of words:
// each lower-cased word w (and each pair of neighbouring words) gets a fixed Gaussian vector
// v_w = N(0, I_D) drawn from Philox under (seed, FNV-1a(w)); the description's feature is the L2-normalised
// sum. Same text -> same feature on any machine; similar descriptions -> nearby features.
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"

namespace cpdiff::pipeline {

inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

inline std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string w;
  for (char ch : text) {
    if (std::isalnum(static_cast<unsigned char>(ch))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else if (!w.empty()) {
      words.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  return words;
}

class text_condition {
 public:
  explicit text_condition(std::size_t dim, std::uint64_t seed = 0x7465787463) : dim_(dim), seed_(seed) {
    CPDIFF_CHECK(dim > 0, config_error, "pipeline::text_condition", "dimension must be positive");
  }
  std::size_t dim() const { return dim_; }

  // description -> feature [dim], unit L2 norm.
  std::vector<float> encode(std::string_view description) const {
    const auto words = words_of(description);
    CPDIFF_CHECK(!words.empty(), config_error, "pipeline::text_condition::encode", "empty description");
    std::vector<double> acc(dim_, 0.0);
    auto add = [&](const std::string& token, double weight) {
      const std::uint64_t h = fnv1a(token);
      for (std::size_t i = 0; i < dim_; ++i) acc[i] += weight * philox_normal(seed_, h, i);
    };
    for (std::size_t i = 0; i < words.size(); ++i) {
      add(words[i], 1.0);
      if (i + 1 < words.size()) add(words[i] + " " + words[i + 1], 0.5);
    }
    double norm = 0;
    for (double v : acc) norm += v * v;
    norm = std::sqrt(norm);
    std::vector<float> out(dim_);
    for (std::size_t i = 0; i < dim_; ++i) out[i] = static_cast<float>(acc[i] / norm);
    return out;
  }

 private:
  std::size_t dim_;
  std::uint64_t seed_;
};

}  // namespace cpdiff::pipeline
