#pragma once
// Wrappers that turn a failing CUDA runtime or cuBLAS call into a cpdiff::device_error naming the
// call, the file and line, and the library's own error name and text:
//   CPDIFF_CUDA_CHECK(cudaMemcpy(...));
//   my_kernel<<<grid, block, 0, s>>>(...); CPDIFF_CUDA_CHECK_LAUNCH();
//   CPDIFF_CUBLAS_CHECK(cublasSgemm(...));
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cpdiff/core/error.hpp"

namespace cpdiff::cuda_detail {

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();  // reset the last-error slot: a later launch check must not report this failure again
  throw device_error(detail::concat("cpdiff: ", file, ":", line, ": ", call, " failed: ", cudaGetErrorName(e), " (",
                                    cudaGetErrorString(e), ")"));
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw device_error(detail::concat("cpdiff: ", file, ":", line, ": ", call, " failed: ", cublasGetStatusName(s),
                                    " (", cublasGetStatusString(s), ")"));
}

}  // namespace cpdiff::cuda_detail

#define CPDIFF_CUDA_CHECK(call) ::cpdiff::cuda_detail::check_cuda((call), #call, __FILE__, __LINE__)
#define CPDIFF_CUBLAS_CHECK(call) ::cpdiff::cuda_detail::check_cublas((call), #call, __FILE__, __LINE__)
// After a <<<...>>> launch: reports a bad configuration (grid too large, too much shared memory).
#define CPDIFF_CUDA_CHECK_LAUNCH() ::cpdiff::cuda_detail::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
