// The layer parity suite (parity/layer_cases.hpp) on the GPU backend, in double against PyTorch's fixtures:
// the same cases, the same tolerance and the same fixture loader as the CPU's tests/parity/test_layer_parity.cpp.
// catch-filter: [parity]   (the cases are in a header, so their filename tag is [#layer_cases])
#include <tuple>

#include "cpdiff/cpdiff_cuda.cuh"

using parity_backends = std::tuple<cpdiff::gpu>;
#include "parity/layer_cases.hpp"
