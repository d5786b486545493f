#pragma once
// Mini-batches for the trainers: a fresh shuffle of the dataset at every epoch, from Philox numbers,
// and the gather of the chosen rows into a batch tensor.
//
// The permutation of epoch e is a pure function of (seed, e, M): Fisher-Yates whose k-th draw is the
// 32-bit word k of Philox stream (permutation_stream_tag | e) under the seed. A sampler's whole state
// is therefore (epoch, position): a checkpoint stores those two numbers and the resumed run draws the
// same batches. The tag keeps these streams apart from the ones an rng hands out (counted from 0) and
// from philox_normal's (top bit set).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/tensor/tensor.hpp"

namespace cpdiff::train {

inline constexpr std::uint64_t permutation_stream_tag = 0x4000000000000000ull;

// A uniformly shuffled 0..n-1 for epoch `epoch` (see above).
inline std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), std::size_t{0});
  const std::uint64_t stream = permutation_stream_tag | epoch;
  std::uint64_t k = 0;  // draw index
  for (std::size_t i = n; i > 1; --i, ++k) {
    const std::uint32_t u = philox4x32(seed, k >> 2, stream).v[k & 3];
    // j uniform on {0..i-1} (bias below i / 2^32)
    const auto j = static_cast<std::size_t>((static_cast<std::uint64_t>(u) * i) >> 32);
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

// Consecutive slices of each epoch's permutation. The last batch of an epoch is shorter when the
// batch size does not divide M (PyTorch's DataLoader default), or skipped with drop_last.
class shuffled_batches {
 public:
  shuffled_batches(std::size_t dataset_size, std::size_t batch_size, std::uint64_t seed, bool drop_last = false)
      : m_(dataset_size), batch_(std::min(batch_size, dataset_size)), seed_(seed), drop_last_(drop_last) {
    CPDIFF_CHECK(dataset_size > 0, config_error, "train::shuffled_batches", "the dataset is empty");
    CPDIFF_CHECK(batch_size > 0, config_error, "train::shuffled_batches", "batch_size must be positive");
    perm_ = epoch_permutation(m_, seed_, epoch_);
  }

  // Indices of the next batch (a view valid until the next call); starts a new epoch when needed.
  std::span<const std::size_t> next() {
    if (position_ + (drop_last_ ? batch_ : 1) > m_) {
      ++epoch_;
      position_ = 0;
      perm_ = epoch_permutation(m_, seed_, epoch_);
    }
    const std::size_t n = std::min(batch_, m_ - position_);
    const std::span<const std::size_t> out(perm_.data() + position_, n);
    position_ += n;
    return out;
  }

  // True when the last next() took the final batch of its epoch.
  bool epoch_finished() const { return position_ + (drop_last_ ? batch_ : 1) > m_; }

  std::size_t epoch() const { return epoch_; }        // the epoch the last batch came from
  std::size_t position() const { return position_; }  // next index into that epoch's permutation
  std::size_t batch_size() const { return batch_; }
  std::size_t dataset_size() const { return m_; }
  std::size_t batches_per_epoch() const { return drop_last_ ? m_ / batch_ : (m_ + batch_ - 1) / batch_; }
  const std::vector<std::size_t>& permutation() const { return perm_; }

  // Continue from a saved (epoch, position).
  void restore(std::size_t epoch, std::size_t position) {
    CPDIFF_CHECK(position <= m_, config_error, "train::shuffled_batches::restore", "position ", position,
                 " exceeds the dataset size ", m_);
    epoch_ = epoch;
    position_ = position;
    perm_ = epoch_permutation(m_, seed_, epoch_);
  }

 private:
  std::size_t m_, batch_;
  std::uint64_t seed_;
  bool drop_last_;
  std::size_t epoch_ = 0, position_ = 0;
  std::vector<std::size_t> perm_;
};

// dst [N, row...] = rows idx[0..N) of the host matrix src [M, row_size]. On the host this copies
// straight into dst; other memory spaces stage the batch on the host and transfer it once.
template <class T, class B>
void gather_rows(const B& be, std::span<const T> src, std::size_t row_size, std::span<const std::size_t> idx,
                 tensor<T, B>& dst, std::vector<T>& staging) {
  CPDIFF_CHECK(dst.size() == idx.size() * row_size, shape_error, "train::gather_rows", "destination ", dst.shape(),
               " does not hold ", idx.size(), " rows of ", row_size);
  (void)be;  // only the staged path needs the backend
  T* out = nullptr;
  if constexpr (std::is_same_v<memory_space_t<B>, host_space>) {
    out = dst.data();
  } else {
    staging.resize(dst.size());
    out = staging.data();
  }
  for (std::size_t i = 0; i < idx.size(); ++i) {
    CPDIFF_ASSERT((idx[i] + 1) * row_size <= src.size());
    if (row_size > 0) std::memcpy(out + i * row_size, src.data() + idx[i] * row_size, row_size * sizeof(T));
  }
  if constexpr (!std::is_same_v<memory_space_t<B>, host_space>)
    from_host(be, std::span<const T>(staging), dst.view());
}

}  // namespace cpdiff::train
