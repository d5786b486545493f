#pragma once
// matmul_precision: the arithmetic of float matrix products, chosen at run time for a scope.
//   fp32   IEEE float throughout (the default; what every CPU-vs-GPU comparison assumes)
//   bf16   mixed precision: float inputs and outputs, products on bfloat16 tensor cores with float
//          accumulation (cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF). The paper trains its diffusion model
//          "in bf16 for the first 75% of training" (SPEC.md); train_options::bf16_fraction schedules it.
// The setting is per thread and read by the cuda backend's GEMMs (dense and the convolutions' batched
// ones). Double products, the other kernels and the CPU backend ignore it: the CPU has no bf16 matrix
// units here, so bf16 on the CPU is plain fp32 (a run's figures on the CPU do not depend on it).
//
//   { matmul_precision_scope bf16(matmul_precision::bf16);  ... forward, backward ... }   // fp32 again
namespace cpdiff {

enum class matmul_precision { fp32, bf16 };

namespace detail {
inline matmul_precision& current_matmul_precision() {
  thread_local matmul_precision p = matmul_precision::fp32;
  return p;
}
}  // namespace detail

// The precision in effect on this thread.
inline matmul_precision current_matmul_precision() { return detail::current_matmul_precision(); }

// Sets the precision for its lifetime and restores the previous one (scopes nest).
class matmul_precision_scope {
 public:
  explicit matmul_precision_scope(matmul_precision p) : saved_(detail::current_matmul_precision()) {
    detail::current_matmul_precision() = p;
  }
  ~matmul_precision_scope() { detail::current_matmul_precision() = saved_; }
  matmul_precision_scope(const matmul_precision_scope&) = delete;
  matmul_precision_scope& operator=(const matmul_precision_scope&) = delete;

 private:
  matmul_precision saved_;
};

inline const char* to_string(matmul_precision p) { return p == matmul_precision::bf16 ? "bf16" : "fp32"; }

}  // namespace cpdiff
