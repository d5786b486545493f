#pragma once
// The condition side of diffusion training.
//
// condition_set<T>: the condition of each training sample, either one feature row per sample
// (rows [M, D]) or a condition id per sample into a table of feature rows (ids [M], table [K, D]; a
// few tasks, many checkpoints each). Host data, copied; gather() writes the rows of a batch.
//
// A condition encoder turns those rows into the features the denoiser takes, and may be trained with
// it. Its contract:
//   forward(rows [N, D_in]) -> features [N, D]   (a view the encoder owns, valid until the next call)
//   backward(d features [N, D])                  (adds its parameter gradients; the input's are unused)
//   parameters() -> parameter_store<T, B>&       (only for a jointly trained encoder)
//   trainable() -> bool                          (optional: false leaves parameters() untrained, for an
//                                                 encoder that is the identity or not by a run-time choice)
// identity_condition passes the rows through (features computed beforehand, e.g. by a frozen text
// encoder), the trainer's default.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "cpdiff/backend/policy.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::train {

template <class T>
class condition_set {
 public:
  // rows [M, D]: the condition features of sample i are rows[i].
  static condition_set per_sample(tensor_view<const T, host_space> rows) {
    constexpr const char* where = "train::condition_set::per_sample";
    expect_rank(rows, 2, where, "rows [M, D]");
    expect_nonempty(rows, where, "rows [M, D]");
    condition_set c;
    c.table_.assign(rows.data(), rows.data() + rows.size());
    c.dim_ = rows.dim(1);
    c.ids_.resize(rows.dim(0));
    for (std::size_t i = 0; i < c.ids_.size(); ++i) c.ids_[i] = i;
    return c;
  }
  // ids [M] in [0, K), table [K, D]: the features of sample i are table[ids[i]].
  template <std::integral I>
  static condition_set by_id(std::span<const I> ids, tensor_view<const T, host_space> table) {
    constexpr const char* where = "train::condition_set::by_id";
    expect_rank(table, 2, where, "table [K, D]");
    expect_nonempty(table, where, "table [K, D]");
    CPDIFF_CHECK(!ids.empty(), shape_error, where, "ids: no samples");
    condition_set c;
    c.table_.assign(table.data(), table.data() + table.size());
    c.dim_ = table.dim(1);
    c.ids_.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const bool ok = std::cmp_greater_equal(ids[i], 0) && std::cmp_less(ids[i], table.dim(0));
      CPDIFF_CHECK(ok, shape_error, where, "ids[", i, "] = ", ids[i], " is not a row of the table ", table.shape());
      c.ids_[i] = static_cast<std::size_t>(ids[i]);
    }
    return c;
  }

  std::size_t size() const { return ids_.size(); }  // M
  std::size_t dim() const { return dim_; }          // D
  // The table row of sample i.
  std::size_t row_of(std::size_t i) const { return ids_.at(i); }
  std::span<const T> table() const { return table_; }

 private:
  condition_set() = default;
  std::vector<T> table_;  // [K, D]
  std::vector<std::size_t> ids_;
  std::size_t dim_ = 0;
};

template <class E, class T, class B>
concept condition_encoder = requires(E& e, tensor_view<const T, memory_space_t<B>> x) {
  { e.forward(x) } -> std::convertible_to<decltype(x)>;
  e.backward(x);
};
template <class E, class T, class B>
concept trainable_condition_encoder =
    condition_encoder<E, T, B> && requires(E& e) { { e.parameters() } -> std::same_as<parameter_store<T, B>&>; };

// Features given as they are: forward returns the rows, backward drops the gradient.
template <class T, class B>
struct identity_condition {
  using cview = tensor_view<const T, memory_space_t<B>>;
  cview forward(cview rows) { return rows; }
  void backward(cview) {}
};

}  // namespace cpdiff::train
