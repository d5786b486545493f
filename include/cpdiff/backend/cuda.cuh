#pragma once
// The CUDA backend: the `gpu` policy, its traits (device memory, device_buffer) and every cuda kernel
// header, the counterpart of backend/cpu.hpp. nvcc only: a CPU-only build never includes a .cuh.
// Each kernel header adds `gpu const&` overloads of the op catalogue (backend/ops.hpp) in cpdiff::ops,
// taking device views or device_ptr<T>; layers call kernels unqualified, so nn::linear<In, Out, float, gpu>
// picks them up with no change.
#if !defined(__CUDACC__)
#error "cpdiff/backend/cuda.cuh needs nvcc: compile this translation unit as CUDA (a .cu file)"
#else

#include "cpdiff/backend/cuda/policy.cuh"

#include "cpdiff/backend/cuda/blas.cuh"
#include "cpdiff/backend/cuda/broadcast.cuh"
#include "cpdiff/backend/cuda/concat.cuh"
#include "cpdiff/backend/cuda/diffusion.cuh"
#include "cpdiff/backend/cuda/dropout.cuh"
#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/embedding.cuh"
#include "cpdiff/backend/cuda/losses.cuh"
#include "cpdiff/backend/cuda/optim.cuh"

// Convolution (im2col + cuBLAS), pooling and normalisation kernels.
#include "cpdiff/backend/cuda/conv.cuh"
#include "cpdiff/backend/cuda/norms.cuh"
#include "cpdiff/backend/cuda/pooling.cuh"
#include "cpdiff/backend/cuda/softmax.cuh"

#endif  // __CUDACC__
