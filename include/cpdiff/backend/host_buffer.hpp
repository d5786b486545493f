#pragma once
// host_buffer<T>: a 64-byte aligned, resizable host array (the CPU backend's storage).
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace cpdiff {

template <class T, std::size_t Align = 64>
struct aligned_allocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U, Align>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Align}); }
  friend bool operator==(const aligned_allocator&, const aligned_allocator&) { return true; }
};

template <class T>
using host_buffer = std::vector<T, aligned_allocator<T>>;

}  // namespace cpdiff
