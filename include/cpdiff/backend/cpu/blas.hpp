#pragma once
// CPU GEMM through Eigen maps over our row-major buffers.
#include <Eigen/Core>
#include <cstddef>

#include "cpdiff/backend/ops.hpp"

namespace cpdiff::ops {

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major with leading dimensions.
template <class T>
void gemm(cpu, trans ta, trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  using mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using cmap = Eigen::Map<const mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  using map = Eigen::Map<mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  if (M == 0 || N == 0) return;
  map c(C, static_cast<Eigen::Index>(M), static_cast<Eigen::Index>(N), Eigen::OuterStride<>(static_cast<Eigen::Index>(ldc)));
  if (beta == T(0))
    c.setZero();
  else if (beta != T(1))
    c *= beta;
  if (K == 0 || alpha == T(0)) return;
  const auto m = static_cast<Eigen::Index>(M), n = static_cast<Eigen::Index>(N), k = static_cast<Eigen::Index>(K);
  // op(A) is [M,K]: stored as [M,K] (no) or [K,M] (yes); likewise op(B).
  cmap a(A, ta == trans::no ? m : k, ta == trans::no ? k : m, Eigen::OuterStride<>(static_cast<Eigen::Index>(lda)));
  cmap b(B, tb == trans::no ? k : n, tb == trans::no ? n : k, Eigen::OuterStride<>(static_cast<Eigen::Index>(ldb)));
  if (ta == trans::no && tb == trans::no)
    c.noalias() += alpha * (a * b);
  else if (ta == trans::no)
    c.noalias() += alpha * (a * b.transpose());
  else if (tb == trans::no)
    c.noalias() += alpha * (a.transpose() * b);
  else
    c.noalias() += alpha * (a.transpose() * b.transpose());
}

// C_b = alpha op(A_b) op(B_b) + beta C_b for b < batch, X_b = X + b * stride_X: one call for many small products
// (attention's per-sample scores). The products run side by side on OpenMP threads when their multiply-adds
// pay for it, each on one thread (Eigen does not thread inside a parallel region).
template <class T>
void gemm_batched(cpu be, trans ta, trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
                  std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb, std::size_t stride_b, T beta, T* C,
                  std::size_t ldc, std::size_t stride_c, std::size_t batch) {
  const double work = double(batch) * double(M) * double(N) * double(K);
  const auto count = static_cast<std::ptrdiff_t>(batch);
#pragma omp parallel for schedule(static) if (batch > 1 && work > double(1 << 16))
  for (std::ptrdiff_t b = 0; b < count; ++b) {
    const auto i = static_cast<std::size_t>(b);
    gemm(be, ta, tb, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
  }
}

}  // namespace cpdiff::ops
