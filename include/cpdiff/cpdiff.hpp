#pragma once
// cpdiff: the umbrella header for CPU builds. <cpdiff/cpdiff_cuda.cuh> adds the GPU backend (nvcc only).
#include "cpdiff/core/concepts.hpp"
#include "cpdiff/core/error.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/core/shape.hpp"

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/backend/policy.hpp"

#include "cpdiff/tensor/parameter_store.hpp"
#include "cpdiff/tensor/tensor.hpp"
#include "cpdiff/tensor/tensor_view.hpp"

#include "cpdiff/nn/linear.hpp"
