#pragma once
// lora_collection: the trained LoRA checkpoints of many conditions (SPEC.md steps 1-3), the data set of
// the parameter autoencoder and the diffusion model.
//   data::lora_collection coll(data::lora_layout(model.adapter()));
//   std::size_t c = coll.add_condition("rotate(30)", {30.0f});   // name + optional feature vector
//   cfg.on_checkpoint = coll.appender(c);                        // train::finetune_lora appends K vectors
//   std::vector<float> z = coll.normalise(coll.checkpoint(c, 0), c);
//   coll.save("runs/collection");  auto back = data::lora_collection::load("runs/collection");
// Each condition holds K flat vectors [K, N] (N = layout().size(), order: lora_layout). Its z-score
// statistics are per coordinate over its own K vectors: mean, and std = max(population std, std_floor)
// (np.std, ddof = 0). The floor (default 1e-8) keeps constant coordinates finite: such a coordinate
// normalises to exactly 0 and any generated value denormalises to the mean plus at most |z| * floor.
// Statistics are computed in double on first use and cached until the condition's data change; they are
// derived data, so they are not saved (load recomputes them bit for bit).
//
// Folder format (save/load):
//   index.json            {"format": "cpdiff.lora_collection", "version": 1, "dim": N, "std_floor": ...,
//                          "adapter": {"r", "lora_alpha", "use_rslora", "lora_dropout", "target_modules"},
//                          "tensors": [{"name", "module", "kind": "A"|"B", "shape": [..], "offset"}, ...],
//                          "feature_dim": F, "conditions": [{"name", "file", "checkpoints": K}, ...]}
//   condition_00000.npy   float32 [K, N], one per condition
//   features.npy          float32 [C, F], only when F > 0
// save() writes the whole set into a fresh sibling folder "<folder>.tmp.<pid>.<n>.<random>" and then
// moves it into place (swapping it with an existing folder in one step where the file system can), so a
// reader sees the old set or the new one, never a mix. load() checks everything: a missing, truncated or
// inconsistent file is an io_error naming that file.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/lora_layout.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/data/zscore.hpp"
#include "cpdiff/io/lora_adapter.hpp"

namespace cpdiff::data {

class lora_collection {
 public:
  static constexpr double default_std_floor = 1e-8;
  static constexpr const char* index_file = "index.json";
  static constexpr const char* features_file = "features.npy";

  explicit lora_collection(lora_layout layout, double std_floor = default_std_floor)
      : layout_(std::move(layout)), floor_(std_floor) {
    CPDIFF_CHECK(layout_.size() > 0, config_error, "data::lora_collection", "empty layout");
    CPDIFF_CHECK(std_floor > 0 && std::isfinite(std_floor), config_error, "data::lora_collection",
                 "std_floor must be finite and > 0, got ", std_floor);
  }

  const lora_layout& layout() const { return layout_; }
  std::size_t dim() const { return layout_.size(); }
  double std_floor() const { return floor_; }
  std::size_t condition_count() const { return conds_.size(); }
  std::size_t feature_dim() const { return feature_dim_; }
  std::size_t total_checkpoints() const {
    std::size_t n = 0;
    for (const auto& c : conds_) n += c.count;
    return n;
  }

  // A new condition; names are unique, feature vectors all have the first condition's length.
  std::size_t add_condition(std::string name, std::vector<float> features = {}) {
    constexpr const char* where = "data::lora_collection::add_condition";
    CPDIFF_CHECK(!index_.contains(name), config_error, where, "duplicate condition '", name, "'");
    if (conds_.empty()) feature_dim_ = features.size();
    CPDIFF_CHECK(features.size() == feature_dim_, shape_error, where, "condition '", name, "' has ", features.size(),
                 " features, the collection ", feature_dim_);
    index_.emplace(name, conds_.size());
    conds_.push_back({std::move(name), std::move(features), {}, 0, {}, false});
    return conds_.size() - 1;
  }
  std::size_t find(const std::string& name) const {
    if (auto it = index_.find(name); it != index_.end()) return it->second;
    throw_error<config_error>("data::lora_collection::find", "no condition '", name, "' (", conds_.size(),
                              " conditions)");
  }
  const std::string& name(std::size_t c) const { return at(c).name; }
  std::span<const float> features(std::size_t c) const { return at(c).features; }

  // Appends one checkpoint, flat [N] or as an adapter of this layout.
  void append(std::size_t c, std::span<const float> flat) {
    CPDIFF_CHECK(flat.size() == dim(), shape_error, "data::lora_collection::append", "condition '", at(c).name,
                 "': vector of ", flat.size(), " values, the layout has ", dim());
    auto& cd = at(c);
    cd.data.insert(cd.data.end(), flat.begin(), flat.end());
    ++cd.count;
    cd.stats_valid = false;
    pooled_.reset();
  }
  void append(std::size_t c, const lora::adapter& a) { append(c, std::span<const float>(layout_.flatten(a))); }
  // A hook for train::finetune_config::on_checkpoint that appends to condition c (keep *this alive).
  std::function<void(std::size_t, const lora::adapter&)> appender(std::size_t c) {
    at(c);
    return [this, c](std::size_t, const lora::adapter& a) { append(c, a); };
  }

  std::size_t checkpoint_count(std::size_t c) const { return at(c).count; }
  std::span<const float> checkpoints(std::size_t c) const { return at(c).data; }  // [K, N]
  std::span<const float> checkpoint(std::size_t c, std::size_t k) const {
    const auto& cd = at(c);
    CPDIFF_CHECK(k < cd.count, config_error, "data::lora_collection::checkpoint", "condition '", cd.name, "' has ",
                 cd.count, " checkpoints, asked for #", k);
    return std::span<const float>(cd.data).subspan(k * dim(), dim());
  }
  lora::adapter adapter(std::size_t c, std::size_t k) const { return layout_.unflatten(checkpoint(c, k)); }

  // Per-coordinate mean and floored std over condition c's checkpoints (at least one).
  const zscore_stats& statistics(std::size_t c) const {
    const auto& cd = at(c);
    CPDIFF_CHECK(cd.count > 0, config_error, "data::lora_collection::statistics", "condition '", cd.name,
                 "' has no checkpoints");
    if (cd.stats_valid) return cd.stats;
    cd.stats = zscore_stats::fit(cd.data, dim(), floor_);
    cd.stats_valid = true;
    return cd.stats;
  }
  // The same over every checkpoint of every condition together: one shared normalisation, under which a
  // generated vector must itself carry which condition it is for (per-condition statistics already do).
  // Cached like statistics(c) until any condition's data change.
  const zscore_stats& pooled_statistics() const {
    if (pooled_) return *pooled_;
    std::vector<float> all;
    for (const auto& cd : conds_) all.insert(all.end(), cd.data.begin(), cd.data.end());
    CPDIFF_CHECK(!all.empty(), config_error, "data::lora_collection::pooled_statistics", "no checkpoints yet");
    pooled_ = zscore_stats::fit(all, dim(), floor_);
    return *pooled_;
  }

  // z = (v - mean_c) / std_c for each row of v [M, N].
  std::vector<float> normalise(std::span<const float> v, std::size_t c) const { return statistics(c).normalise(v); }
  // v = z * std_c + mean_c for each row of z [M, N].
  std::vector<float> denormalise(std::span<const float> z, std::size_t c) const {
    return statistics(c).denormalise(z);
  }

  void save(const std::filesystem::path& folder) const;
  static lora_collection load(const std::filesystem::path& folder);

  static std::string condition_file(std::size_t c) {
    std::string n = std::to_string(c);
    if (n.size() < 5) n.insert(0, 5 - n.size(), '0');
    return "condition_" + n + ".npy";
  }

 private:
  struct condition {
    std::string name;
    std::vector<float> features;  // [F]
    std::vector<float> data;      // [count, N]
    std::size_t count = 0;
    mutable zscore_stats stats;
    mutable bool stats_valid = false;
  };

  static lora_collection load_unchecked(const std::filesystem::path& folder);
  void write_files(const std::filesystem::path& folder) const;
  const condition& at(std::size_t c) const {
    CPDIFF_CHECK(c < conds_.size(), config_error, "data::lora_collection", "condition index ", c, " out of range (",
                 conds_.size(), " conditions)");
    return conds_[c];
  }
  condition& at(std::size_t c) { return const_cast<condition&>(std::as_const(*this).at(c)); }


  lora_layout layout_;
  double floor_;
  std::size_t feature_dim_ = 0;
  std::vector<condition> conds_;
  std::unordered_map<std::string, std::size_t> index_;  // condition name -> its index in conds_
  mutable std::optional<zscore_stats> pooled_;  // pooled_statistics(), until the data change
};

}  // namespace cpdiff::data

#include "cpdiff/data/lora_collection_io.hpp"
