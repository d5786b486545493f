#pragma once
// GPU tests: whether a CUDA device can be used, and the loud skip when it cannot.
//
// Each CUDA test program's main() (support/cuda_catch_main.cpp) checks once and, without a device,
// prints "SKIPPED: no CUDA device (...)" and exits with 77, which CTest shows as "Skipped" rather than
// "Passed". Test cases also start with CPDIFF_REQUIRE_CUDA_OR_SKIP(), so a program built with another
// main still says, per test case, that it did not test anything.
#include <cuda_runtime.h>

#include <string>

#include <catch2/catch.hpp>

namespace cpdiff::testing {

// Exit status of a test program that had nothing to run (CTest's SKIP_RETURN_CODE).
inline constexpr int skip_return_code = 77;

// Empty when a device is usable, else why not (the CUDA runtime's message).
inline std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  }
  if (n == 0) return "cudaGetDeviceCount reports 0 devices";
  return {};
}

inline bool has_cuda_device() {
  static const bool has = cuda_unavailable_reason().empty();
  return has;
}

}  // namespace cpdiff::testing

// First line of every [cuda] test case: without a device, a WARN that Catch prints, and return.
#define CPDIFF_REQUIRE_CUDA_OR_SKIP()                                                               \
  do {                                                                                              \
    if (!::cpdiff::testing::has_cuda_device()) {                                                    \
      WARN("SKIPPED: no CUDA device (" << ::cpdiff::testing::cuda_unavailable_reason() << ")");     \
      return;                                                                                       \
    }                                                                                               \
  } while (0)
