#pragma once
// parameter_store<T, B>: one flat buffer of parameter values and one of gradients, same layout,
// with named entries (DESIGN.md "Layers"). Layers register their parameters at construction and keep
// only an id; views are made on demand, so the store may grow while a model is being built.
// An optimiser step is one pass over values()/grads(); checkpoints iterate for_each_parameter().
// The store is neither copyable nor movable (layers keep a pointer to it): models hold it by unique_ptr.
#include <cstddef>
#include <string>
#include <vector>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/shape.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff {

struct param_id {
  std::size_t index = static_cast<std::size_t>(-1);
};

struct param_entry {
  std::string name;
  cpdiff::shape shape;
  std::size_t offset = 0;  // in elements, into values() and grads()
  bool trainable = true;   // frozen entries (a LoRA's base weight) are skipped by optimisers
};

template <class T, class B>
class parameter_store {
 public:
  using memory_space = memory_space_t<B>;
  using view_type = tensor_view<T, memory_space>;

  explicit parameter_store(B be = {}) : be_(be) {}
  parameter_store(const parameter_store&) = delete;
  parameter_store& operator=(const parameter_store&) = delete;

  // Registers a zero-initialised parameter; names must be unique.
  param_id add(std::string name, cpdiff::shape s, bool trainable = true) {
    for (const auto& e : entries_)
      CPDIFF_CHECK(e.name != name, config_error, "parameter_store::add", "duplicate parameter name '", name, "'");
    const std::size_t offset = total_;
    total_ += s.size();
    values_.resize(total_);  // zero-fills the new tail on the CPU; the cuda buffer does the same
    grads_.resize(total_);
    entries_.push_back({std::move(name), s, offset, trainable});
    return {entries_.size() - 1};
  }

  const B& backend() const { return be_; }
  std::size_t size() const { return total_; }
  std::size_t count() const { return entries_.size(); }
  const std::vector<param_entry>& entries() const { return entries_; }
  const param_entry& entry(param_id id) const { return entries_.at(id.index); }

  view_type value(param_id id) { return at(values_, id); }
  view_type grad(param_id id) { return at(grads_, id); }
  tensor_view<const T, memory_space> value(param_id id) const {
    const auto& e = entry(id);
    return {in_space<memory_space>(values_.data() + e.offset), e.shape};
  }
  // Whole flat buffers, [size()].
  view_type values() { return {in_space<memory_space>(values_.data()), cpdiff::shape{total_}}; }
  view_type grads() { return {in_space<memory_space>(grads_.data()), cpdiff::shape{total_}}; }
  tensor_view<const T, memory_space> values() const {
    return {in_space<memory_space>(values_.data()), cpdiff::shape{total_}};
  }
  tensor_view<const T, memory_space> grads() const {
    return {in_space<memory_space>(grads_.data()), cpdiff::shape{total_}};
  }

  param_id find(const std::string& name) const {
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].name == name) return {i};
    throw_error<config_error>("parameter_store::find", "no parameter named '", name, "' (", entries_.size(),
                              " parameters registered)");
  }
  void set_trainable(param_id id, bool t) { entries_.at(id.index).trainable = t; }

  // f(const param_entry&, view value, view grad) for every parameter, in registration order.
  template <class F>
  void for_each_parameter(F&& f) {
    for (std::size_t i = 0; i < entries_.size(); ++i) f(entries_[i], value(param_id{i}), grad(param_id{i}));
  }

 private:
  view_type at(buffer_t<B, T>& buf, param_id id) {
    const auto& e = entries_.at(id.index);
    return {in_space<memory_space>(buf.data() + e.offset), e.shape};
  }
  B be_;
  buffer_t<B, T> values_, grads_;
  std::vector<param_entry> entries_;
  std::size_t total_ = 0;
};

}  // namespace cpdiff
