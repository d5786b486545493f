#pragma once
// norm_conv_block: the block p-diff builds its autoencoder encoder and its U-Net from,
//   (LeakyReLU, unless First) -> InstanceNorm(Cin) -> Conv(Cin -> Cmid, K, stride 1, Pad1)
//   -> LeakyReLU -> InstanceNorm(Cmid) -> Conv(Cmid -> Cout, K, Stride2, Pad2)
// InstanceNorm without affine (eps 1e-5), LeakyReLU slope 0.01. Lengths: L -> L + 2 Pad1 - K + 1 -> conv2.
#include <cstddef>
#include <ratio>
#include <type_traits>

#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/conv1d.hpp"
#include "cpdiff/nn/instance_norm1d.hpp"
#include "cpdiff/nn/sequential.hpp"

namespace cpdiff::models {

template <class T, class B>
using leaky = nn::leaky_relu<std::ratio<1, 100>, T, B>;

template <std::size_t Cin, std::size_t Cmid, std::size_t Cout, std::size_t K, bool First, class T, class B,
          std::size_t Pad1 = K / 2, std::size_t Stride2 = 1, std::size_t Pad2 = K / 2>
using norm_conv_block = std::conditional_t<
    First,
    nn::sequential<nn::instance_norm1d<Cin, T, B>, nn::conv1d<Cin, Cmid, K, T, B, 1, Pad1>, leaky<T, B>,
                   nn::instance_norm1d<Cmid, T, B>, nn::conv1d<Cmid, Cout, K, T, B, Stride2, Pad2>>,
    nn::sequential<leaky<T, B>, nn::instance_norm1d<Cin, T, B>, nn::conv1d<Cin, Cmid, K, T, B, 1, Pad1>, leaky<T, B>,
                   nn::instance_norm1d<Cmid, T, B>, nn::conv1d<Cmid, Cout, K, T, B, Stride2, Pad2>>>;

}  // namespace cpdiff::models
