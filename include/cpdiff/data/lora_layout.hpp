#pragma once
// lora_layout: how one LoRA checkpoint becomes one vector and back (SPEC.md step 2).
// The tensors "<module>.lora_A.weight" [rank, in] and "<module>.lora_B.weight" [out, rank] are sorted by
// name (std::string's order) and concatenated, each row-major; the layout records each tensor's offset and
// shape plus the adapter's rank, alpha, rsLoRA flag, dropout and target modules, so unflatten() rebuilds
// an adapter equal to the one flattened (exact: the values are copied, never converted).
//   data::lora_layout layout(model.adapter());
//   std::vector<float> v = layout.flatten(model.adapter());    // [layout.size()]
//   lora::adapter back = layout.unflatten(v);                  // == model.adapter()
#include <algorithm>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/io/lora_adapter.hpp"

namespace cpdiff::data {

struct lora_tensor_slot {
  std::string name;    // "<module>.lora_A.weight" or "<module>.lora_B.weight"
  std::string module;  // "<module>"
  char which = 'A';    // 'A' or 'B'
  cpdiff::shape shape;  // A: [rank, in_features], B: [out_features, rank]
  std::size_t offset = 0;  // first element in the flat vector
  std::size_t size() const { return shape.size(); }
  friend bool operator==(const lora_tensor_slot&, const lora_tensor_slot&) = default;
};

inline std::string lora_tensor_name(const std::string& module, char which) {
  return module + (which == 'A' ? ".lora_A.weight" : ".lora_B.weight");
}

class lora_layout {
 public:
  lora_layout() = default;
  // The layout of `like` (its values are not used).
  explicit lora_layout(const lora::adapter& like)
      : rank_(like.rank), alpha_(like.alpha), use_rslora_(like.use_rslora), dropout_(like.dropout),
        targets_(like.target_modules) {
    CPDIFF_CHECK(like.rank > 0 && !like.modules.empty(), config_error, "data::lora_layout",
                 "the adapter is empty (rank ", like.rank, ", ", like.modules.size(), " modules)");
    std::vector<lora_tensor_slot> s;
    for (const auto& [module, w] : like.modules) {
      s.push_back({lora_tensor_name(module, 'A'), module, 'A', w.a_shape(), 0});
      s.push_back({lora_tensor_name(module, 'B'), module, 'B', w.b_shape(), 0});
    }
    set_slots(std::move(s));
  }
  // A layout from its parts (a loader); the slots are sorted and their offsets recomputed.
  lora_layout(std::size_t rank, double alpha, bool use_rslora, double dropout, std::vector<std::string> targets,
              std::vector<lora_tensor_slot> slots)
      : rank_(rank), alpha_(alpha), use_rslora_(use_rslora), dropout_(dropout), targets_(std::move(targets)) {
    set_slots(std::move(slots));
  }

  std::size_t size() const { return size_; }  // N, the length of a flat vector
  const std::vector<lora_tensor_slot>& slots() const { return slots_; }
  std::size_t rank() const { return rank_; }
  double alpha() const { return alpha_; }
  bool use_rslora() const { return use_rslora_; }
  double dropout() const { return dropout_; }
  const std::vector<std::string>& target_modules() const { return targets_; }

  // Writes a's tensors into out [size()]. a must hold exactly the layout's modules with the same shapes
  // and rank (shape_error naming the module otherwise) and the same alpha and rsLoRA flag (config_error).
  // Its dropout is not checked: unflatten() reports the layout's.
  void flatten_into(const lora::adapter& a, std::span<float> out) const {
    constexpr const char* where = "data::lora_layout::flatten";
    CPDIFF_CHECK(out.size() == size_, shape_error, where, "output holds ", out.size(), " values, the layout ", size_);
    CPDIFF_CHECK(a.rank == rank_ && a.modules.size() * 2 == slots_.size(), shape_error, where, "adapter has rank ",
                 a.rank, " and ", a.modules.size(), " modules, the layout rank ", rank_, " and ", slots_.size() / 2);
    CPDIFF_CHECK(lora::detail::same_scalar(a.alpha, alpha_) && a.use_rslora == use_rslora_, config_error, where,
                 "adapter has alpha ", a.alpha, " (rslora ", a.use_rslora, "), the layout alpha ", alpha_, " (rslora ",
                 use_rslora_, "): one collection holds one scaling");
    for (const auto& s : slots_) {
      auto it = a.modules.find(s.module);
      CPDIFF_CHECK(it != a.modules.end(), shape_error, where, "the adapter has no module '", s.module, "'");
      const lora::lora_weights& w = it->second;
      const shape got = s.which == 'A' ? w.a_shape() : w.b_shape();
      CPDIFF_CHECK(got == s.shape, shape_error, where, "tensor '", s.name, "': layout shape ", s.shape, ", adapter ",
                   got);
      const std::vector<float>& v = s.which == 'A' ? w.a : w.b;
      std::copy(v.begin(), v.end(), out.begin() + static_cast<std::ptrdiff_t>(s.offset));
    }
  }
  std::vector<float> flatten(const lora::adapter& a) const {
    std::vector<float> out(size_);
    flatten_into(a, out);
    return out;
  }

  // The adapter a flat vector [size()] stands for.
  lora::adapter unflatten(std::span<const float> v) const {
    CPDIFF_CHECK(v.size() == size_, shape_error, "data::lora_layout::unflatten", "vector holds ", v.size(),
                 " values, the layout ", size_);
    lora::adapter a;
    a.rank = rank_;
    a.alpha = alpha_;
    a.use_rslora = use_rslora_;
    a.dropout = dropout_;
    a.target_modules = targets_;
    std::map<std::string, lora::lora_weights> w;
    for (const auto& s : slots_) {
      lora::lora_weights& m = w[s.module];
      m.rank = rank_;
      std::vector<float> values(v.begin() + static_cast<std::ptrdiff_t>(s.offset),
                                v.begin() + static_cast<std::ptrdiff_t>(s.offset + s.size()));
      if (s.which == 'A') {
        m.in_features = s.shape[1];
        m.a = std::move(values);
      } else {
        m.out_features = s.shape[0];
        m.b = std::move(values);
      }
    }
    for (auto& [module, m] : w) a.add(module, std::move(m));
    return a;
  }

  friend bool operator==(const lora_layout&, const lora_layout&) = default;

 private:
  // Sorts by name, checks the A/B pairs agree with the rank, assigns offsets.
  void set_slots(std::vector<lora_tensor_slot> s) {
    constexpr const char* where = "data::lora_layout";
    std::sort(s.begin(), s.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
    std::map<std::string, int> seen;
    size_ = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      auto& e = s[i];
      CPDIFF_CHECK(i == 0 || s[i - 1].name != e.name, config_error, where, "tensor '", e.name, "' appears twice");
      CPDIFF_CHECK(e.name == lora_tensor_name(e.module, e.which) && (e.which == 'A' || e.which == 'B'), config_error,
                   where, "tensor '", e.name, "' does not name module '", e.module, "' lora_", e.which);
      CPDIFF_CHECK(e.shape.rank() == 2 && e.shape[0] > 0 && e.shape[1] > 0 &&
                       (e.which == 'A' ? e.shape[0] : e.shape[1]) == rank_,
                   shape_error, where, "tensor '", e.name, "' has shape ", e.shape, ", which does not fit rank ", rank_);
      std::size_t n = 0;
      CPDIFF_CHECK(e.shape.checked_size(n) && checked_add(size_, n, n), shape_error, where, "tensor '", e.name,
                   "' of shape ", e.shape, " overflows the flat vector's length");
      ++seen[e.module];
      e.offset = size_;
      size_ = n;
    }
    for (const auto& [m, n] : seen)
      CPDIFF_CHECK(n == 2, config_error, where, "module '", m, "' lacks its lora_A or lora_B tensor");
    slots_ = std::move(s);
  }

  std::size_t rank_ = 0;
  double alpha_ = 0;
  bool use_rslora_ = false;
  double dropout_ = 0;
  std::vector<std::string> targets_;
  std::vector<lora_tensor_slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace cpdiff::data
