#pragma once
// What the CUDA test files include, once at global scope before tests/CMakeLists.txt's unity translation unit
// wraps each file in a namespace of its own (see support/unity_prelude.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ratio>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/cpdiff_cuda.cuh"
#include "cpdiff/train/nccl_communicator.cuh"
#include "support/close_check.hpp"
#include "support/cuda_device.hpp"
#include "support/parity.hpp"
