# The CUDA backend is header-only like the rest; this only decides whether the CUDA tests,
# benchmarks and examples are compiled. AUTO: on when nvcc is found.
set(CPDIFF_HAS_CUDA OFF)
if(NOT CPDIFF_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)  # H100 / H200
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CPDIFF_HAS_CUDA ON)
  elseif(CPDIFF_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CPDIFF_ENABLE_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "cpdiff: CUDA backend builds: ${CPDIFF_HAS_CUDA}")

# cpdiff_cuda_program(<target>): the compile options and libraries every CUDA program here (tests,
# benchmarks, examples) needs. Eigen's headers under nvcc: constexpr calls across host/device and its
# __host__ __device__ defaulted members (diagnostic 20012) and its nvcc-only pragmas are noise; OpenMP reaches
# the CPU code through -Xcompiler. C++20 by flag: CMake 3.25 knows no CUDA_STANDARD above 17 for nvcc.
# EIGEN_NO_CUDA: no cpdiff kernel uses Eigen in device code, so Eigen may treat a .cu file as host code. Without
# the define Eigen sees nvcc (EIGEN_GPUCC) and turns its SIMD off in the host code too: the example's CPU stages
# compiled in a .cu pretrained at 361-392 steps/s on this 2-core machine, with the define at 1563, from g++ at 1878.
function(cpdiff_cuda_program target)
  target_compile_definitions(${target} PRIVATE EIGEN_NO_CUDA)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr -diag-suppress=20012 -Xcompiler=-fopenmp,-Wno-unknown-pragmas>)
  target_link_libraries(${target} PRIVATE cpdiff::cpdiff cpdiff_build_flags CUDA::cudart CUDA::cublas)
endfunction()
