#pragma once
// Data parallelism for the trainers (training_loop uses these when train_options::comm has more than one rank):
// every rank holds the whole model and data, draws the same global batch from the seeded permutation, and takes
// its own rows of it (shard_of); its gradient, weighted by its share of the rows, is summed over the ranks with
// one all-reduce of the flat gradient buffer, so every rank applies the same mean gradient and keeps the same
// parameters. Per-sample noise follows the global row (rng::first_sample), so K ranks compute what one
// process computes on the whole batch, up to the order of float sums.
//   A model normalised over the batch (BatchNorm: models::style_autoencoder) sees its rank's rows only, as in
// PyTorch DDP without SyncBatchNorm; its running statistics (non-trainable entries) are averaged over the ranks
// after every step so that the parameters stay the same everywhere.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cpdiff/backend/ops.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/train/communicator.hpp"

namespace cpdiff::train {

// Rows [begin, end) of a global batch of n rows for `rank` of `size`: the first n % size ranks take one more.
struct shard {
  std::size_t begin = 0, end = 0;
  std::size_t rows() const { return end - begin; }
};
constexpr shard shard_of(std::size_t n, std::size_t rank, std::size_t size) {
  const std::size_t base = n / size, extra = n % size;
  const std::size_t begin = rank * base + (rank < extra ? rank : extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

// FNV-1a over bytes: a fingerprint for agreement checks across ranks (not a checksum against tampering).
inline std::uint64_t fingerprint(const void* data, std::size_t bytes, std::uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
inline std::uint64_t fingerprint(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) {
  return fingerprint(s.data(), s.size(), h);
}

// Throws config_error on every rank (collectively: all ranks call it) when the ranks hold different values.
inline void expect_same_on_all_ranks(communicator& c, const char* who, const std::string& what, std::uint64_t value) {
  const auto [lo, hi] = c.min_max(value);
  CPDIFF_CHECK(lo == hi, config_error, who, "the ", c.size(), " ranks (", c.name(), ") disagree on ", what,
               ": every rank must build the same model with the same seed, data and options");
}

namespace dp_detail {

// x[i] = sum over ranks of x[i] for a backend buffer: host memory directly, device memory through the
// communicator when it can, else staged through the host.
template <class T, class B>
void sum_buffer(communicator& c, const B& be, tensor_view<T, memory_space_t<B>> x) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cpdiff::train data parallelism: parameters must be float or double");
  if (x.size() == 0) return;
  if constexpr (std::is_same_v<memory_space_t<B>, host_space>) {
    c.sum(std::span<T>(x.data(), x.size()));
  } else {
    if constexpr (std::is_same_v<T, float>) {
      if (c.device_memory()) {
        c.sum_device(x.data().get(), x.size());
        return;
      }
    }
    std::vector<T> host = to_host(be, tensor_view<const T, memory_space_t<B>>(x));
    c.sum(std::span<T>(host));
    from_host(be, std::span<const T>(host), x);
  }
}

}  // namespace dp_detail

// grads = sum over ranks of (weight * grads): weight = this rank's rows / the global batch's rows, so the
// result is the gradient of the mean loss over the whole batch. One all-reduce over the flat buffer.
template <class T, class B>
void all_reduce_gradients(communicator& c, parameter_store<T, B>& ps, double weight) {
  auto g = ps.grads();
  if (weight != 1.0) scale(ps.backend(), g, static_cast<T>(weight));
  dp_detail::sum_buffer<T, B>(c, ps.backend(), g);
}

// Non-trainable entries (BatchNorm running statistics) = their mean over the ranks: packed into one buffer so
// that a model with many normalisation layers costs one all-reduce per step, not one per entry.
// `packed` is the caller's scratch, kept between steps (resize() keeps its capacity: no allocation per step).
template <class T, class B>
void average_buffers(communicator& c, parameter_store<T, B>& ps, tensor<T, B>& packed) {
  std::size_t total = 0;
  for (const auto& e : ps.entries())
    if (!e.trainable) total += e.shape.size();
  if (total == 0) return;
  const B& be = ps.backend();
  packed.resize(shape{total});  // [sum of the non-trainable entries' sizes]
  auto for_each_buffer = [&](auto&& f) {
    std::size_t at = 0;
    for (const auto& e : ps.entries()) {
      if (e.trainable || e.shape.size() == 0) continue;
      f(ps.values().range(e.offset, e.shape.size()), packed.view().range(at, e.shape.size()));
      at += e.shape.size();
    }
  };
  // packed = concatenation of the buffers; packed = sum over ranks / K; buffers = packed.
  for_each_buffer([&](auto value, auto slot) { copy(be, tensor_view<const T, memory_space_t<B>>(value), slot); });
  dp_detail::sum_buffer<T, B>(c, be, packed.view());
  scale(be, packed.view(), static_cast<T>(1.0 / static_cast<double>(c.size())));
  for_each_buffer([&](auto value, auto slot) { copy(be, tensor_view<const T, memory_space_t<B>>(slot), value); });
}

// Every parameter value (trainable and not) = rank 0's: ranks that built or pre-trained a model on their own start
// data-parallel training from one set of weights.
template <class T, class B>
void broadcast_values(communicator& c, parameter_store<T, B>& ps) {
  auto v = ps.values();
  if (!c.is_root()) fill(ps.backend(), v, T(0));
  dp_detail::sum_buffer<T, B>(c, ps.backend(), v);
}

// A fingerprint of every parameter value (host copy): equal on all ranks while they train in step.
template <class T, class B>
std::uint64_t values_fingerprint(const parameter_store<T, B>& ps) {
  const std::vector<T> v = to_host(ps.backend(), ps.values());
  return fingerprint(v.data(), v.size() * sizeof(T));
}

}  // namespace cpdiff::train
