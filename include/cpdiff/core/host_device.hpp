#pragma once
// CPDIFF_HD marks small functions that both backends share (element-wise maths, the RNG):
// __host__ __device__ under nvcc, nothing in a plain C++ build.
#if defined(__CUDACC__)
#define CPDIFF_HD __host__ __device__
#else
#define CPDIFF_HD
#endif
