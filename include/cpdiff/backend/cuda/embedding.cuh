#pragma once
// CUDA kernels of the embedding lookup, one overload per kernel of backend/cpu/embedding.hpp:
//   idx [n] (int32 or int64, device)   table [num, dim]   y [n, dim]
#include <cstddef>
#include <type_traits>
#include <cstdint>
#include <optional>

#include <thrust/find.h>
#include <thrust/iterator/counting_iterator.h>

#include "cpdiff/backend/ops.hpp"  // embedding_index, index_violation
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

namespace cuda_impl {

template <class I>
struct index_out_of_range {
  const I* idx;
  std::size_t num;
  __device__ bool operator()(std::size_t i) const { return idx[i] < 0 || static_cast<std::uint64_t>(idx[i]) >= num; }
};

template <class T, class I>
struct gather_op {
  const I* idx;
  const T* table;
  T* y;
  std::size_t dim;
  __device__ void operator()(std::size_t k) const {
    const std::size_t i = k / dim, j = k % dim;
    y[k] = table[static_cast<std::size_t>(idx[i]) * dim + j];
  }
};

// One thread per column j, lookups in order: repeated indices add up in the CPU's order, with no atomics,
// so the result is deterministic and bit-equal to the CPU. The lookups of a training step are few.
template <class T, class I>
struct scatter_add_column_op {
  const I* idx;
  const T* dy;
  T* dtable;
  std::size_t n, dim;
  __device__ void operator()(std::size_t j) const {
    for (std::size_t i = 0; i < n; ++i) dtable[static_cast<std::size_t>(idx[i]) * dim + j] += dy[i * dim + j];
  }
};

}  // namespace cuda_impl

// The first index outside [0, num), with its position, or nothing. Waits for be.stream.
template <embedding_index I>
std::optional<index_violation> find_index_out_of_range(const gpu& be, device_ptr<I> idx_dev, std::size_t n,
                                                       std::size_t num) {
  const I* idx = idx_dev.get();
  if (n == 0) return std::nullopt;
  const std::size_t first = cuda_impl::thrust_call("ops::find_index_out_of_range(cuda)", [&] {
    const auto it = thrust::find_if(thrust::cuda::par.on(be.stream), thrust::counting_iterator<std::size_t>(0),
                                    thrust::counting_iterator<std::size_t>(n),
                                    cuda_impl::index_out_of_range<I>{idx, num});
    return static_cast<std::size_t>(*it);
  });
  if (first >= n) return std::nullopt;
  std::remove_const_t<I> value{};
  CPDIFF_CUDA_CHECK(cudaMemcpyAsync(&value, idx + first, sizeof(I), cudaMemcpyDeviceToHost, be.stream));
  CPDIFF_CUDA_CHECK(cudaStreamSynchronize(be.stream));
  return index_violation{first, std::int64_t(value)};
}

// y[i, :] = table[idx[i], :]   (indices already checked)
template <class T, embedding_index I>
void embedding_gather(const gpu& be, device_ptr<I> idx_dev, std::size_t n,
                      dcptr<T> table_dev, std::size_t dim, device_ptr<T> y_dev) {
  const I* idx = idx_dev.get();
  const T* table = table_dev.get();
  T* y = y_dev.get();
  if (dim == 0) return;
  cuda_impl::launch_n(be, n * dim, cuda_impl::gather_op<T, I>{idx, table, y, dim});
}

// dtable[idx[i], :] += dy[i, :]; repeated indices add up.
template <class T, embedding_index I>
void embedding_scatter_add(const gpu& be, device_ptr<I> idx_dev, std::size_t n,
                           dcptr<T> dy_dev, std::size_t dim,
                           device_ptr<T> dtable_dev) {
  const I* idx = idx_dev.get();
  const T* dy = dy_dev.get();
  T* dtable = dtable_dev.get();
  if (n == 0) return;
  cuda_impl::launch_n(be, dim, cuda_impl::scatter_add_column_op<T, I>{idx, dy, dtable, n, dim});
}

}  // namespace cpdiff::ops
