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

# cpdiff_cuda_program(<target>): a CUDA program of this project (tests, benchmarks, examples): the installed
# cpdiff_cuda_target() plus this project's architecture flags.
include(${CMAKE_CURRENT_LIST_DIR}/cpdiff_cuda_target.cmake)
function(cpdiff_cuda_program target)
  cpdiff_cuda_target(${target})
  target_link_libraries(${target} PRIVATE cpdiff_build_flags)
endfunction()
