#pragma once
// device_buffer<T>: an owning, resizable array in GPU global memory (cudaMalloc, never managed memory),
// the cuda backend's storage for tensor<T, cuda> and parameter_store<T, cuda>.
// It follows the part of std::vector that those use: data(), size(), resize(n). resize keeps the old
// contents and zero-fills the new tail (parameter_store::add relies on it, as on the CPU), and grows the
// capacity geometrically so a store that adds parameters one by one copies O(total) elements in all.
// Copies are deep (device to device), moves steal the pointer.
//
// Ordering: the few calls that (re)allocate are rare (buffers are sized once, then reused), so resize()
// synchronises the device around them; kernels on any stream, blocking or not, see a finished buffer.
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cpdiff/backend/cuda/check.cuh"

namespace cpdiff {

template <class T>
class device_buffer {
 public:
  using value_type = T;

  device_buffer() = default;
  explicit device_buffer(std::size_t n) { resize(n); }
  device_buffer(const device_buffer& o) { assign(o); }
  device_buffer(device_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), capacity_(std::exchange(o.capacity_, 0)) {}
  device_buffer& operator=(const device_buffer& o) {
    if (this != &o) assign(o);
    return *this;
  }
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // New size n: [0, min(size, n)) keeps its values, [size, n) is zero.
  void resize(std::size_t n) {
    if (n <= size_) {
      size_ = n;
      return;
    }
    if (n > capacity_) {
      const std::size_t cap = n > 2 * capacity_ ? n : 2 * capacity_;
      T* fresh = nullptr;
      CPDIFF_CUDA_CHECK(cudaMalloc(&fresh, cap * sizeof(T)));
      if (size_ > 0) {
        // Pending writes into the old block on any stream must land before it is copied.
        const cudaError_t e = cudaDeviceSynchronize();
        if (e == cudaSuccess) {
          const cudaError_t c = cudaMemcpy(fresh, data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice);
          if (c != cudaSuccess) (void)cudaFree(fresh);
          CPDIFF_CUDA_CHECK(c);
        } else {
          (void)cudaFree(fresh);
          CPDIFF_CUDA_CHECK(e);
        }
      }
      release();
      data_ = fresh;
      capacity_ = cap;
    }
    CPDIFF_CUDA_CHECK(cudaMemset(data_ + size_, 0, (n - size_) * sizeof(T)));
    CPDIFF_CUDA_CHECK(cudaDeviceSynchronize());
    size_ = n;
  }

  // Frees the memory (size and capacity 0).
  void clear() {
    release();
    size_ = capacity_ = 0;
  }

 private:
  void assign(const device_buffer& o) {
    if (capacity_ < o.size_) clear();
    size_ = 0;
    resize(o.size_);  // zero-filled; overwritten below
    if (o.size_ > 0) {
      CPDIFF_CUDA_CHECK(cudaMemcpy(data_, o.data_, o.size_ * sizeof(T), cudaMemcpyDeviceToDevice));
      CPDIFF_CUDA_CHECK(cudaDeviceSynchronize());
    }
  }
  // Never throws (destructors call it): a failing cudaFree at exit is ignored.
  void release() noexcept {
    if (data_) (void)cudaFree(data_);
    data_ = nullptr;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace cpdiff
