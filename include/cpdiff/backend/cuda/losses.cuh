#pragma once
// CUDA kernels for the losses, one overload per kernel of backend/cpu/losses.hpp. Pointers are device
// pointers (predictions, targets, labels, probabilities). Sums are accumulated in double and returned to
// the host (these calls wait for be.stream); a NaN / Inf input gives a NaN / Inf loss, as on the CPU.
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <thrust/find.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include "cpdiff/backend/ops.hpp"  // invalid_label
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

namespace cuda_impl {

template <class T>
struct squared_diff {
  const T *pred, *target;
  __device__ double operator()(std::size_t i) const {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    return d * d;
  }
};

template <class T>
struct mse_backward_op {
  const T *pred, *target;
  T* dpred;
  T c;
  __device__ void operator()(std::size_t i) const { dpred[i] = c * (pred[i] - target[i]); }
};

template <class I>
struct label_out_of_range {
  const I* target;
  std::size_t classes;
  __device__ bool operator()(std::size_t i) const {
    const I t = target[i];
    if constexpr (std::is_signed_v<I>)
      if (t < 0) return true;
    return static_cast<std::make_unsigned_t<I>>(t) >= classes;
  }
};

// Row r of the log-softmax: writes prob[r, :] and returns lse_r - x[r, t_r] (idempotent writes, so it can
// be the transform of a reduction). One thread per row: the classes of a row are few.
template <class T, class I>
struct cross_entropy_row {
  const T* logits;
  const I* target;
  T* prob;
  std::size_t C;
  __device__ double operator()(std::size_t r) const {
    const T* x = logits + r * C;
    T* p = prob + r * C;
    T m = x[0];  // a NaN in x[0] stays NaN: every later comparison is false
    for (std::size_t j = 1; j < C; ++j)
      if (x[j] > m) m = x[j];
    T z = 0;
    for (std::size_t j = 0; j < C; ++j) z += exp(x[j] - m);
    const T lse = m + log(z);
    for (std::size_t j = 0; j < C; ++j) p[j] = exp(x[j] - lse);
    return static_cast<double>(lse - x[static_cast<std::size_t>(target[r])]);
  }
};

template <class T, class I>
struct cross_entropy_backward_op {
  const T* prob;
  const I* target;
  T* dlogits;
  std::size_t C;
  T c;
  __device__ void operator()(std::size_t i) const {
    const std::size_t r = i / C, j = i % C;
    T d = c * prob[i];
    if (j == static_cast<std::size_t>(target[r])) d -= c;
    dlogits[i] = d;
  }
};

}  // namespace cuda_impl

// mean_i (pred_i - target_i)^2 over n elements. P and Q are T or const T: no other argument names T, so both
// pointer kinds are deduced as they come.
template <class P, class Q, class T = std::remove_const_t<P>>
  requires std::is_same_v<T, std::remove_const_t<Q>>
double mse_forward(const gpu& be, device_ptr<P> pred_dev, device_ptr<Q> target_dev, std::size_t n) {
  const T* pred = pred_dev.get();
  const T* target = target_dev.get();
  const double s = cuda_impl::thrust_call("ops::mse_forward(cuda)", [&] {
    return thrust::transform_reduce(thrust::cuda::par.on(be.stream), thrust::counting_iterator<std::size_t>(0),
                                    thrust::counting_iterator<std::size_t>(n),
                                    cuda_impl::squared_diff<T>{pred, target}, 0.0, cuda_impl::plus_double{});
  });
  return s / static_cast<double>(n);
}

// dpred_i = scale * 2 (pred_i - target_i) / n
template <class T>
void mse_backward(const gpu& be, dcptr<T> pred_dev,
                  dcptr<T> target_dev, device_ptr<T> dpred_dev, std::size_t n,
                  T scale) {
  const T* pred = pred_dev.get();
  const T* target = target_dev.get();
  T* dpred = dpred_dev.get();
  const T c = scale * T(2) / static_cast<T>(n);
  cuda_impl::launch_n(be, n, cuda_impl::mse_backward_op<T>{pred, target, dpred, c});
}

// The first class label outside [0, classes), if any (index -1 when all are valid). Waits.
template <std::integral I>
invalid_label find_invalid_label(const gpu& be, device_ptr<I> target_dev, std::size_t n, std::size_t classes) {
  const I* target = target_dev.get();
  if (n == 0) return {};
  const std::size_t first = cuda_impl::thrust_call("ops::find_invalid_label(cuda)", [&] {
    const auto it = thrust::find_if(thrust::cuda::par.on(be.stream), thrust::counting_iterator<std::size_t>(0),
                                    thrust::counting_iterator<std::size_t>(n),
                                    cuda_impl::label_out_of_range<I>{target, classes});
    return static_cast<std::size_t>(*it);
  });
  if (first >= n) return {};
  std::remove_const_t<I> value{};
  CPDIFF_CUDA_CHECK(cudaMemcpyAsync(&value, target + first, sizeof(I), cudaMemcpyDeviceToHost, be.stream));
  CPDIFF_CUDA_CHECK(cudaStreamSynchronize(be.stream));
  return {static_cast<std::ptrdiff_t>(first), static_cast<long long>(value)};
}

// Cross-entropy with integer targets through a stable log-softmax; prob [N, C] kept for backward.
// Returns mean_i (lse_i - x[i, t_i]). Labels must already be checked (find_invalid_label). Waits.
template <class T, std::integral I>
double cross_entropy_forward(const gpu& be, dcptr<T> logits_dev,
                             device_ptr<I> target_dev, device_ptr<T> prob_dev, std::size_t N,
                             std::size_t C) {
  const T* logits = logits_dev.get();
  const I* target = target_dev.get();
  T* prob = prob_dev.get();
  const double s = cuda_impl::thrust_call("ops::cross_entropy_forward(cuda)", [&] {
    return thrust::transform_reduce(thrust::cuda::par.on(be.stream), thrust::counting_iterator<std::size_t>(0),
                                    thrust::counting_iterator<std::size_t>(N),
                                    cuda_impl::cross_entropy_row<T, I>{logits, target, prob, C}, 0.0,
                                    cuda_impl::plus_double{});
  });
  return s / static_cast<double>(N);
}

// dlogits [N, C] = scale * (prob - onehot(target)) / N
template <class T, std::integral I>
void cross_entropy_backward(const gpu& be, dcptr<T> prob_dev,
                            device_ptr<I> target_dev, device_ptr<T> dlogits_dev, std::size_t N,
                            std::size_t C, T scale) {
  const T* prob = prob_dev.get();
  const I* target = target_dev.get();
  T* dlogits = dlogits_dev.get();
  const T c = scale / static_cast<T>(N);
  cuda_impl::launch_n(be, N * C, cuda_impl::cross_entropy_backward_op<T, I>{prob, target, dlogits, C, c});
}

}  // namespace cpdiff::ops
