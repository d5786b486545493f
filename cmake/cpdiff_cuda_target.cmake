# cpdiff_cuda_target(<target>): what a CUDA program that includes <cpdiff/cpdiff_cuda.cuh> needs, for this
# project's programs and, installed with the package, for outside projects:
#   find_package(cpdiff REQUIRED)            # enable_language(CUDA) first
#   add_executable(app app.cu)
#   cpdiff_cuda_target(app)
# It links cpdiff::cpdiff, CUDA::cudart and CUDA::cublas and sets the nvcc options: C++20 by flag (CMake 3.25
# knows no CUDA_STANDARD above 17 for nvcc), --expt-relaxed-constexpr and diagnostic 20012 off (Eigen's
# constexpr and __host__ __device__ defaulted members under nvcc), OpenMP for the host code. EIGEN_NO_CUDA: no
# cpdiff kernel uses Eigen in device code, so Eigen may treat the .cu file as host code; without the define it
# sees nvcc and turns its SIMD off in the host code too (the example's CPU stages ran 4x slower).
function(cpdiff_cuda_target target)
  if(NOT TARGET CUDA::cudart OR NOT TARGET CUDA::cublas)
    find_package(CUDAToolkit REQUIRED)
  endif()
  target_compile_definitions(${target} PRIVATE EIGEN_NO_CUDA)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr -diag-suppress=20012 -Xcompiler=-fopenmp,-Wno-unknown-pragmas>)
  target_link_libraries(${target} PRIVATE cpdiff::cpdiff CUDA::cudart CUDA::cublas)
endfunction()
