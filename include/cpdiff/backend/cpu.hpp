#pragma once
// The CPU backend's kernels (Eigen / OpenMP): the implementations of the op catalogue (backend/ops.hpp)
// for cpdiff::cpu. The policy and its traits are in backend/policy.hpp. Only the umbrella header and
// programs include this one; layers and models include backend/ops.hpp and find the kernels at
// instantiation by argument-dependent lookup on the backend value.
#include "cpdiff/backend/policy.hpp"

#include "cpdiff/backend/cpu/blas.hpp"
#include "cpdiff/backend/cpu/broadcast.hpp"
#include "cpdiff/backend/cpu/concat.hpp"
#include "cpdiff/backend/cpu/conv.hpp"
#include "cpdiff/backend/cpu/diffusion.hpp"
#include "cpdiff/backend/cpu/dropout.hpp"
#include "cpdiff/backend/cpu/elementwise.hpp"
#include "cpdiff/backend/cpu/embedding.hpp"
#include "cpdiff/backend/cpu/losses.hpp"
#include "cpdiff/backend/cpu/norms.hpp"
#include "cpdiff/backend/cpu/optim.hpp"
#include "cpdiff/backend/cpu/pooling.hpp"
#include "cpdiff/backend/cpu/softmax.hpp"
