#pragma once
// CUDA element-wise kernels, random fills, reductions and host <-> device transfers: one overload per
// kernel of backend/cpu/elementwise.hpp, same parameters with device views. Element-wise maths comes
// as CPDIFF_HD functors (nn/activation_functors.hpp): transform() runs the very same code on the GPU.
// Work is queued on be.stream; functions that return a value to the host (sum, all_finite, to_host)
// wait for it, the others return at once.
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/logical.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system_error.h>
#include <thrust/transform_reduce.h>

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <cstdint>
#include <span>
#include <vector>

#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/cuda/policy.cuh"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/core/tensor_view.hpp"

namespace cpdiff::ops {

// Launch helpers shared by every cuda kernel header.
namespace cuda_impl {

inline constexpr unsigned block_size = 256;

// Enough blocks for one element per thread, capped: the kernels stride over the rest.
inline unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + block_size - 1) / block_size;
  return static_cast<unsigned>(blocks < (std::size_t(1) << 20) ? blocks : (std::size_t(1) << 20));
}

// op(i) for every i in [0, n), grid-stride.
template <class Op>
__global__ void for_n_kernel(std::size_t n, Op op) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) op(i);
}

template <class Op>
void launch_n(const gpu& be, std::size_t n, Op op) {
  if (n == 0) return;
  for_n_kernel<<<grid_for(n), block_size, 0, be.stream>>>(n, op);
  CPDIFF_CUDA_CHECK_LAUNCH();
}

// Thrust reports failures as thrust::system_error; turn them into device_error like every other call.
template <class F>
auto thrust_call(const char* where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const thrust::system_error& e) {
    throw_error<device_error>(where, e.what());
  }
}

// a * b and a + b rounded separately, never contracted into one fused multiply-add: the GPU then
// reproduces the CPU's rounding where the tests ask for bit-equal results (the RNG fills).
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ inline double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }

struct plus_double {
  __host__ __device__ double operator()(double a, double b) const { return a + b; }
};
template <class T>
struct as_double {
  __host__ __device__ double operator()(T v) const { return static_cast<double>(v); }
};
template <class T>
struct square_as_double {
  __host__ __device__ double operator()(T v) const { return static_cast<double>(v) * static_cast<double>(v); }
};
template <class T>
struct is_finite {
  __host__ __device__ bool operator()(T v) const { return isfinite(v); }
};

template <class T>
struct axpy_op {
  T a;
  const T* x;
  T* y;
  __device__ void operator()(std::size_t i) const { y[i] += a * x[i]; }
};
template <class T>
struct scale_op {
  T a;
  T* y;
  __device__ void operator()(std::size_t i) const { y[i] *= a; }
};
template <class T>
struct add_row_vector_op {
  T* y;
  const T* v;
  std::size_t n;
  __device__ void operator()(std::size_t i) const { y[i] += v[i % n]; }
};
// One thread per column j, rows in order: the same additions in the same order as the CPU loop.
template <class T>
struct add_column_sums_op {
  const T* x;
  T* s;
  std::size_t rows, n;
  __device__ void operator()(std::size_t j) const {
    T acc = s[j];
    for (std::size_t r = 0; r < rows; ++r) acc += x[r * n + j];
    s[j] = acc;
  }
};
template <class T, class F>
struct map1_op {
  const T* x;
  T* y;
  F f;
  __device__ void operator()(std::size_t i) const { y[i] = f(x[i]); }
};
template <class T, class F>
struct map2_op {
  const T *x, *y;
  T* z;
  F f;
  __device__ void operator()(std::size_t i) const { z[i] = f(x[i], y[i]); }
};
template <class T, class F>
struct map3_op {
  const T *x, *y, *z;
  T* w;
  F f;
  __device__ void operator()(std::size_t i) const { w[i] = f(x[i], y[i], z[i]); }
};
template <class T>
struct fill_uniform_op {
  T* y;
  T lo, width;
  std::uint64_t seed, stream, offset;
  __device__ void operator()(std::size_t i) const {
    y[i] = fma_rn(width, static_cast<T>(philox_uniform(seed, stream, offset + i)), lo);  // as the CPU: one fma
  }
};
template <class T>
struct fill_normal_op {
  T* y;
  T mean, stddev;
  std::uint64_t seed, stream, offset;
  __device__ void operator()(std::size_t i) const {
    y[i] = fma_rn(stddev, static_cast<T>(philox_normal(seed, stream, offset + i)), mean);
  }
};

template <class T>
struct transpose_op {
  const T* x;
  T* y;
  std::size_t rows, cols;
  __device__ void operator()(std::size_t i) const {  // i indexes y [batch, cols, rows]
    const std::size_t r = i % rows, c = (i / rows) % cols, b = i / (rows * cols);
    y[i] = x[(b * rows + r) * cols + c];
  }
};
}  // namespace cuda_impl

template <class T>
void fill(const gpu& be, dview<T> y, T value) {
  if (y.empty()) return;
  cuda_impl::thrust_call("ops::fill(cuda)", [&] {
    thrust::fill_n(thrust::cuda::par_nosync.on(be.stream), y.data().get(), y.size(), value);
  });
}

template <class T>
void copy(const gpu& be, dcview<T> x, dview<T> y) {
  CPDIFF_CHECK(x.size() == y.size(), shape_error, "ops::copy", "source ", x.shape(), " and destination ", y.shape(),
               " differ in size");
  if (x.empty() || x.data().get() == y.data().get()) return;
  CPDIFF_CUDA_CHECK(cudaMemcpyAsync(y.data().get(), x.data().get(), x.size() * sizeof(T), cudaMemcpyDeviceToDevice, be.stream));
}

// y += a * x
template <class T>
void axpy(const gpu& be, T a, dcview<T> x, dview<T> y) {
  CPDIFF_ASSERT(x.size() == y.size());
  cuda_impl::launch_n(be, y.size(), cuda_impl::axpy_op<T>{a, x.data().get(), y.data().get()});
}

template <class T>
void scale(const gpu& be, dview<T> y, T a) {
  cuda_impl::launch_n(be, y.size(), cuda_impl::scale_op<T>{a, y.data().get()});
}

// y[r, :] += v for every row r of y [rows, n]   (a bias)
template <class T>
void add_row_vector(const gpu& be, dview<T> y, dcview<T> v) {
  CPDIFF_ASSERT(y.rank() == 2 && v.size() == y.dim(1));
  if (y.dim(1) == 0) return;
  cuda_impl::launch_n(be, y.size(), cuda_impl::add_row_vector_op<T>{y.data().get(), v.data().get(), y.dim(1)});
}

// s[j] += sum_r x[r, j]   (a bias gradient)
template <class T>
void add_column_sums(const gpu& be, dcview<T> x, dview<T> s) {
  CPDIFF_ASSERT(x.rank() == 2 && s.size() == x.dim(1));
  cuda_impl::launch_n(be, x.dim(1), cuda_impl::add_column_sums_op<T>{x.data().get(), s.data().get(), x.dim(0), x.dim(1)});
}

namespace cuda_impl {
template <class T>
struct copy_rows_op {
  const T* src;
  std::size_t src_ld;
  T* dst;
  std::size_t dst_ld, cols;
  __device__ void operator()(std::size_t i) const {
    const std::size_t r = i / cols, c = i % cols;
    dst[r * dst_ld + c] = src[r * src_ld + c];
  }
};
}  // namespace cuda_impl

// y[b, c, r] = x[b, r, c]: each of `batch` matrices [rows, cols] transposed (overwrites y)
template <class T>
void transpose_batched(const gpu& be, std::size_t batch, std::size_t rows, std::size_t cols, dcptr<T> x,
                       device_ptr<T> y) {
  if (batch * rows * cols == 0) return;
  cuda_impl::launch_n(be, batch * rows * cols, cuda_impl::transpose_op<T>{x.get(), y.get(), rows, cols});
}

// dst[r, 0:cols] = src[r, 0:cols] for r < rows, leading dimensions src_ld and dst_ld: one strided copy,
// or a kernel where src_ld < cols (src_ld 0 repeats one row; cudaMemcpy2D needs pitches >= the width).
template <class T>
void copy_rows(const gpu& be, dcptr<T> src_dev, std::size_t src_ld,
               device_ptr<T> dst_dev, std::size_t dst_ld, std::size_t rows,
               std::size_t cols) {
  const T* src = src_dev.get();
  T* dst = dst_dev.get();
  if (rows == 0 || cols == 0) return;
  if (src_ld < cols) {
    cuda_impl::launch_n(be, rows * cols, cuda_impl::copy_rows_op<T>{src, src_ld, dst, dst_ld, cols});
    return;
  }
  CPDIFF_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_ld * sizeof(T), src, src_ld * sizeof(T), cols * sizeof(T), rows,
                                      cudaMemcpyDeviceToDevice, be.stream));
}

// y[i] = f(x[i])
template <class T, class F>
void transform(const gpu& be, dcview<T> x, dview<T> y, F f) {
  CPDIFF_ASSERT(x.size() == y.size());
  cuda_impl::launch_n(be, y.size(), cuda_impl::map1_op<T, F>{x.data().get(), y.data().get(), f});
}

// z[i] = f(x[i], y[i])
template <class T, class F>
void transform(const gpu& be, dcview<T> x, dcview<T> y, dview<T> z, F f) {
  CPDIFF_ASSERT(x.size() == z.size() && y.size() == z.size());
  cuda_impl::launch_n(be, z.size(), cuda_impl::map2_op<T, F>{x.data().get(), y.data().get(), z.data().get(), f});
}

// w[i] = f(x[i], y[i], z[i])
template <class T, class F>
void transform(const gpu& be, dcview<T> x, dcview<T> y, dcview<T> z, dview<T> w, F f) {
  CPDIFF_ASSERT(x.size() == w.size() && y.size() == w.size() && z.size() == w.size());
  cuda_impl::launch_n(be, w.size(), cuda_impl::map3_op<T, F>{x.data().get(), y.data().get(), z.data().get(), w.data().get(), f});
}

// y[i] = lo + (hi - lo) * U(0,1) at counter offset + i: bit-equal to the CPU fill for the same (seed, stream).
template <class T>
void fill_uniform(const gpu& be, dview<T> y, T lo, T hi, std::uint64_t seed, std::uint64_t stream,
                  std::uint64_t offset = 0) {
  cuda_impl::launch_n(be, y.size(), cuda_impl::fill_uniform_op<T>{y.data().get(), lo, hi - lo, seed, stream, offset});
}

// y[i] = mean + stddev * N(0,1): equal to the CPU fill up to the GPU's log / sin / cos (a few ulp).
template <class T>
void fill_normal(const gpu& be, dview<T> y, T mean, T stddev, std::uint64_t seed, std::uint64_t stream,
                 std::uint64_t offset = 0) {
  cuda_impl::launch_n(be, y.size(), cuda_impl::fill_normal_op<T>{y.data().get(), mean, stddev, seed, stream, offset});
}

template <class T>
double sum(const gpu& be, dcview<T> x) {
  if (x.empty()) return 0.0;
  return cuda_impl::thrust_call("ops::sum(cuda)", [&] {
    return thrust::transform_reduce(thrust::cuda::par.on(be.stream), x.data().get(), x.data().get() + x.size(),
                                    cuda_impl::as_double<T>{}, 0.0, cuda_impl::plus_double{});
  });
}

template <class T>
double sum_squares(const gpu& be, dcview<T> x) {
  if (x.empty()) return 0.0;
  return cuda_impl::thrust_call("ops::sum_squares(cuda)", [&] {
    return thrust::transform_reduce(thrust::cuda::par.on(be.stream), x.data().get(), x.data().get() + x.size(),
                                    cuda_impl::square_as_double<T>{}, 0.0, cuda_impl::plus_double{});
  });
}

template <class T>
bool all_finite(const gpu& be, dcview<T> x) {
  if (x.empty()) return true;
  return cuda_impl::thrust_call("ops::all_finite(cuda)", [&] {
    return thrust::all_of(thrust::cuda::par.on(be.stream), x.data().get(), x.data().get() + x.size(), cuda_impl::is_finite<T>{});
  });
}

// Device -> host: waits for the stream, so the copy sees every kernel queued before it.
template <class T>
std::vector<T> to_host(const gpu& be, dcview<T> x) {
  std::vector<T> out(x.size());
  if (x.empty()) return out;
  CPDIFF_CUDA_CHECK(cudaMemcpyAsync(out.data(), x.data().get(), x.size() * sizeof(T), cudaMemcpyDeviceToHost, be.stream));
  CPDIFF_CUDA_CHECK(cudaStreamSynchronize(be.stream));
  return out;
}

// Host -> device: waits until the copy is done, so src may be released as soon as this returns.
template <class T>
void from_host(const gpu& be, std::span<const T> src, dview<T> y) {
  CPDIFF_CHECK(src.size() == y.size(), shape_error, "ops::from_host", "source has ", src.size(),
               " elements, destination ", y.shape());
  if (src.empty()) return;
  CPDIFF_CUDA_CHECK(cudaMemcpyAsync(y.data().get(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, be.stream));
  CPDIFF_CUDA_CHECK(cudaStreamSynchronize(be.stream));
}

}  // namespace cpdiff::ops
