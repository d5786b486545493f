// The layer parity suite (parity/layer_cases.hpp) on the CPU backend; tests/cuda/test_cuda_layer_parity.cu runs
// the same cases on the GPU.
// catch-filter: [parity]   (the cases are in a header, so their filename tag is [#layer_cases])
#include <tuple>

#include "cpdiff/cpdiff.hpp"

using parity_backends = std::tuple<cpdiff::cpu>;
#include "parity/layer_cases.hpp"
