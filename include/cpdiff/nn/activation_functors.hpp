#pragma once
// The element-wise maths of each activation, written once for every backend.
// A functor F has
//   value(x)         -> y = f(x)
//   derivative(x, y) -> f'(x), given y = f(x) from the forward pass (tanh and sigmoid need only y)
//   name             -> used in error messages ("nn::gelu::forward")
// marked CPDIFF_HD so the CUDA kernels call the very same code. The layer nn::activation<F, T, B>
// (nn/activation.hpp) applies them through ops::transform with the two adaptors at the bottom.
// Conventions at the kinks follow PyTorch: leaky_relu and relu take the negative branch at x = 0
// (x > 0 is the positive test), elu likewise (x <= 0 is the exponential branch).
#include <cmath>
#include <ratio>

#include "cpdiff/core/float_math.hpp"
#include "cpdiff/core/host_device.hpp"

namespace cpdiff::nn {

// 1 / (1 + e^-x) without overflow: exp() only ever sees a non-positive argument, e = e^-|x|,
// sigmoid = 1 / (1 + e) for x >= 0 and e / (1 + e) below. Branch-free, so that loops over it vectorise.
template <class T>
CPDIFF_HD inline T stable_sigmoid(T x) {
  const T e = fmath::exp(x < T(0) ? x : -x);
  const T s = T(1) / (T(1) + e);
  return x >= T(0) ? s : e * s;
}

template <class Ratio>
inline constexpr bool is_ratio_v = false;
template <std::intmax_t N, std::intmax_t D>
inline constexpr bool is_ratio_v<std::ratio<N, D>> = true;

struct relu_fn {
  static constexpr const char* name = "relu";
  template <class T>
  CPDIFF_HD T value(T x) const { return x > T(0) ? x : T(0); }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const { return x > T(0) ? T(1) : T(0); }
};

// y = x (x > 0), slope * x otherwise. Slope is a std::ratio: leaky_relu_fn<std::ratio<1, 5>> is 0.2.
template <class Slope = std::ratio<1, 100>>
struct leaky_relu_fn {
  static_assert(is_ratio_v<Slope>, "cpdiff::nn::leaky_relu_fn: Slope must be a std::ratio, e.g. std::ratio<1, 100>");
  static constexpr const char* name = "leaky_relu";
  template <class T>
  CPDIFF_HD static constexpr T slope() { return T(Slope::num) / T(Slope::den); }
  template <class T>
  CPDIFF_HD T value(T x) const { return x > T(0) ? x : slope<T>() * x; }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const { return x > T(0) ? T(1) : slope<T>(); }
};

// y = x (x > 0), alpha (e^x - 1) otherwise; f'(x) = alpha e^x on the exponential branch
// (computed from x, not as y + alpha, which cancels for very negative x).
template <class Alpha = std::ratio<1>>
struct elu_fn {
  static_assert(is_ratio_v<Alpha>, "cpdiff::nn::elu_fn: Alpha must be a std::ratio, e.g. std::ratio<1>");
  static constexpr const char* name = "elu";
  template <class T>
  CPDIFF_HD static constexpr T alpha() { return T(Alpha::num) / T(Alpha::den); }
  template <class T>
  CPDIFF_HD T value(T x) const { return x > T(0) ? x : alpha<T>() * fmath::expm1(x); }
  template <class T>
  // alpha e^x = y + alpha for x <= 0: from the output, no second exponential.
  CPDIFF_HD T derivative(T x, T y) const { return x > T(0) ? T(1) : y + alpha<T>(); }
};

// y = x sigmoid(x); f'(x) = s (1 + x (1 - s)) with s = sigmoid(x).
struct silu_fn {
  static constexpr const char* name = "silu";
  template <class T>
  CPDIFF_HD T value(T x) const { return x * stable_sigmoid(x); }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const {
    const T s = stable_sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
};

// Exact GELU: y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)); f'(x) = Phi(x) + x phi(x).
// Phi(x) is computed as erfc(-x / sqrt 2) / 2, the same function without 1 + erf's cancellation for x < 0.
struct gelu_erf_fn {
  static constexpr const char* name = "gelu";
  template <class T>
  CPDIFF_HD static T cdf(T x) {
    constexpr T inv_sqrt2 = T(0.70710678118654752440);
    return T(0.5) * fmath::erfc(-x * inv_sqrt2);
  }
  template <class T>
  CPDIFF_HD T value(T x) const { return x * cdf(x); }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const {
    constexpr T inv_sqrt_2pi = T(0.39894228040143267794);
    return cdf(x) + x * inv_sqrt_2pi * fmath::exp(T(-0.5) * x * x);
  }
};

// GELU, tanh approximation (PyTorch approximate="tanh"):
//   u = sqrt(2/pi) (x + 0.044715 x^3),  y = x/2 (1 + tanh u)
//   f'(x) = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
struct gelu_tanh_fn {
  static constexpr const char* name = "gelu_tanh";
  template <class T>
  CPDIFF_HD T value(T x) const {
    constexpr T beta = T(0.79788456080286535588), kappa = T(0.044715);
    return T(0.5) * x * (T(1) + std::tanh(beta * (x + kappa * x * x * x)));
  }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const {
    constexpr T beta = T(0.79788456080286535588), kappa = T(0.044715);
    const T t = std::tanh(beta * (x + kappa * x * x * x));
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * beta * (T(1) + T(3) * kappa * x * x);
  }
};

// y = tanh x; f'(x) = 1 - y^2.
struct tanh_fn {
  static constexpr const char* name = "tanh";
  template <class T>
  CPDIFF_HD T value(T x) const { return std::tanh(x); }
  template <class T>
  CPDIFF_HD T derivative(T, T y) const { return T(1) - y * y; }
};

// y = clamp(x, -1, 1) (PyTorch's Hardtanh); f'(x) = 1 inside (-1, 1), 0 where clamped.
// The parameter autoencoder clamps its noised latent with it.
struct hardtanh_fn {
  static constexpr const char* name = "hardtanh";
  template <class T>
  CPDIFF_HD T value(T x) const { return x < T(-1) ? T(-1) : (x > T(1) ? T(1) : x); }
  template <class T>
  CPDIFF_HD T derivative(T x, T) const { return (x > T(-1) && x < T(1)) ? T(1) : T(0); }
};

// y = 1 / (1 + e^-x); f'(x) = y (1 - y).
struct sigmoid_fn {
  static constexpr const char* name = "sigmoid";
  template <class T>
  CPDIFF_HD T value(T x) const { return stable_sigmoid(x); }
  template <class T>
  CPDIFF_HD T derivative(T, T y) const { return y * (T(1) - y); }
};

// Adaptors for ops::transform: y[i] = f(x[i]) and dx[i] = dy[i] f'(x[i], y[i]). Named structs rather
// than lambdas so that a CUDA kernel can take them without extended-lambda support.
template <class F>
struct apply_value {
  F f;
  template <class T>
  CPDIFF_HD T operator()(T x) const { return f.value(x); }
};
template <class F>
struct apply_derivative {
  F f;
  template <class T>
  CPDIFF_HD T operator()(T x, T y, T dy) const { return dy * f.derivative(x, y); }
};

}  // namespace cpdiff::nn
