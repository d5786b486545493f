#pragma once
// cpdiff with the GPU backend: everything in <cpdiff/cpdiff.hpp> plus cpdiff::cuda. For .cu files
// compiled by nvcc; one program can hold CPU and GPU models side by side (copy_parameters moves the
// values between them).
#if !defined(__CUDACC__)
#error "cpdiff/cpdiff_cuda.cuh needs nvcc: include <cpdiff/cpdiff.hpp> in C++ files, this header in .cu files"
#else

#include "cpdiff/cpdiff.hpp"

#include "cpdiff/backend/cuda.cuh"
#include "cpdiff/tensor/copy_parameters.hpp"

#endif  // __CUDACC__
