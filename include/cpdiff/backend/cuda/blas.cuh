#pragma once
// CUDA GEMM through cuBLAS, same contract as backend/cpu/blas.hpp:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major with leading dimensions.
// cuBLAS is column-major; a row-major X with leading dimension ld is the column-major X^T with the same
// ld, so we ask cuBLAS for C^T[N,M] = op(B)^T[N,K] * op(A)^T[K,M]: operands swapped, flags unchanged.
// One cuBLAS handle per host thread and device, created on first use and bound to be.stream per call.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <map>
#include <type_traits>

#include "cpdiff/backend/ops.hpp"  // ops::trans
#include "cpdiff/backend/cuda/check.cuh"
#include "cpdiff/backend/matmul_precision.hpp"
#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

namespace cuda_impl {

// The calling thread's cuBLAS handle for the current device. Handles are destroyed at thread exit
// (before the CUDA runtime shuts down: thread_local objects die before static ones).
class cublas_handles {
 public:
  cublas_handles() = default;
  cublas_handles(const cublas_handles&) = delete;
  cublas_handles& operator=(const cublas_handles&) = delete;
  ~cublas_handles() {
    for (auto& [device, h] : handles_) (void)cublasDestroy(h);
  }
  cublasHandle_t get() {
    int device = 0;
    CPDIFF_CUDA_CHECK(cudaGetDevice(&device));
    auto it = handles_.find(device);
    if (it != handles_.end()) return it->second;
    cublasHandle_t h = nullptr;
    CPDIFF_CUBLAS_CHECK(cublasCreate(&h));
    // Plain IEEE arithmetic (no TF32): GPU results stay comparable with the CPU backend.
    CPDIFF_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    handles_.emplace(device, h);
    return h;
  }

 private:
  std::map<int, cublasHandle_t> handles_;
};

inline cublasHandle_t cublas_handle(const gpu& be) {
  thread_local cublas_handles handles;
  cublasHandle_t h = handles.get();
  CPDIFF_CUBLAS_CHECK(cublasSetStream(h, be.stream));
  return h;
}

inline cublasOperation_t to_cublas(trans t) { return t == trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

inline int to_int(std::size_t v, const char* what) {
  CPDIFF_CHECK(v <= static_cast<std::size_t>(INT_MAX), config_error, "ops::gemm(cuda)", what, " = ", v,
               " exceeds cuBLAS's 32-bit int range");
  return static_cast<int>(v);
}

// Float products follow matmul_precision (backend/matmul_precision.hpp): bf16 runs them on tensor cores
// with bfloat16 inputs and float accumulation; double products are always IEEE double.
inline cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                                float* C, int ldc) {
  if (current_matmul_precision() == matmul_precision::bf16)
    return cublasGemmEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C, CUDA_R_32F, ldc,
                        CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT);
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                const double* alpha, const double* A, int lda, const double* B, int ldb,
                                const double* beta, double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
// Batched: C_b for b < batch, X_b = X + b * stride_X (stride 0 shares one matrix), as gemm_call.
inline cublasStatus_t gemm_batched_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                        int k, const float* alpha, const float* A, int lda, long long sa,
                                        const float* B, int ldb, long long sb, const float* beta, float* C, int ldc,
                                        long long sc, int batch) {
  if (current_matmul_precision() == matmul_precision::bf16)  // as gemm_call in blas.cuh
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb, beta,
                                      C, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT);
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
inline cublasStatus_t gemm_batched_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                        int k, const double* alpha, const double* A, int lda, long long sa,
                                        const double* B, int ldb, long long sb, const double* beta, double* C, int ldc,
                                        long long sc, int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

// C[r, c] = beta * C[r, c] (beta == 0 writes zeros, as BLAS does: NaNs in C do not survive).
template <class T>
struct scale_matrix_op {
  T* C;
  std::size_t N, ldc;
  T beta;
  __device__ void operator()(std::size_t i) const {
    T& c = C[(i / N) * ldc + i % N];
    c = beta == T(0) ? T(0) : beta * c;
  }
};

}  // namespace cuda_impl

template <class T>
void gemm(const gpu& be, trans ta, trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha,
          dcptr<T> A_dev,
          std::size_t lda, dcptr<T> B_dev, std::size_t ldb, T beta, device_ptr<T> C_dev, std::size_t ldc) {
  const T* A = A_dev.get();
  const T* B = B_dev.get();
  T* C = C_dev.get();
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cpdiff::ops::gemm(cuda): T must be float or double (cublasSgemm / cublasDgemm)");
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == T(0)) {
    // Nothing to multiply: C = beta * C, as the CPU version.
    if (beta != T(1)) cuda_impl::launch_n(be, M * N, cuda_impl::scale_matrix_op<T>{C, N, ldc, beta});
    return;
  }
  using cuda_impl::to_int;
  // Column-major: C^T[N,M] = op(B)^T[N,K] op(A)^T[K,M].
  CPDIFF_CUBLAS_CHECK(cuda_impl::gemm_call(cuda_impl::cublas_handle(be), cuda_impl::to_cublas(tb),
                                           cuda_impl::to_cublas(ta), to_int(N, "N"), to_int(M, "M"), to_int(K, "K"),
                                           &alpha, B, to_int(ldb, "ldb"), A, to_int(lda, "lda"), &beta, C,
                                           to_int(ldc, "ldc")));
}

// The CPU's gemm_batched (cpu/blas.hpp) on cuBLAS: one strided-batched call.
template <class T>
void gemm_batched(const gpu& be, trans ta, trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha,
                  dcptr<T> A, std::size_t lda, std::size_t stride_a, dcptr<T> B, std::size_t ldb, std::size_t stride_b,
                  T beta, device_ptr<T> C, std::size_t ldc, std::size_t stride_c, std::size_t batch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cpdiff::ops::gemm_batched(cuda): T must be float or double (cuBLAS)");
  if (M == 0 || N == 0 || batch == 0) return;
  using cuda_impl::to_int;
  // Column-major: C_b^T[N,M] = op(B_b)^T op(A_b)^T.
  CPDIFF_CUBLAS_CHECK(cuda_impl::gemm_batched_call(
      cuda_impl::cublas_handle(be), cuda_impl::to_cublas(tb), cuda_impl::to_cublas(ta), to_int(N, "N"), to_int(M, "M"),
      to_int(K, "K"), &alpha, B.get(), to_int(ldb, "ldb"), static_cast<long long>(stride_b), A.get(),
      to_int(lda, "lda"), static_cast<long long>(stride_a), &beta, C.get(), to_int(ldc, "ldc"),
      static_cast<long long>(stride_c), to_int(batch, "batch")));
}

}  // namespace cpdiff::ops
