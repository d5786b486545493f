#pragma once
// CUDA optimiser kernels, one overload per kernel of backend/cpu/optim.hpp: the same element-wise
// update, one thread per element of the contiguous range [0, n) of device pointers. Scalars that do not
// depend on the element (decay, step size, sqrt(bc2)) are computed on the host exactly as the CPU does.
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "cpdiff/backend/cuda/elementwise.cuh"
#include "cpdiff/backend/cuda/policy.cuh"

namespace cpdiff::ops {

namespace cuda_impl {

template <class T>
struct adamw_op {
  T *p, *m, *v;
  const T* g;
  T decay, step_size, bc2_sqrt, beta1, beta2, one_minus_b1, one_minus_b2, eps;
  __device__ void operator()(std::size_t i) const {
    const T gi = g[i];
    const T mi = beta1 * m[i] + one_minus_b1 * gi;
    const T vi = beta2 * v[i] + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T denom = sqrt(vi) / bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
};

template <class T>
struct sgd_op {
  T *p, *buf;
  const T* g;
  T lr, momentum, keep, weight_decay;
  bool nesterov, first_step, use_momentum, use_decay;
  __device__ void operator()(std::size_t i) const {
    T d = use_decay ? g[i] + weight_decay * p[i] : g[i];
    if (use_momentum) {
      const T b = first_step ? d : momentum * buf[i] + keep * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
  }
};

template <class T>
struct ema_op {
  T* shadow;
  const T* p;
  T decay, rest;
  __device__ void operator()(std::size_t i) const { shadow[i] = decay * shadow[i] + rest * p[i]; }
};

template <class T>
struct swap_op {
  T *a, *b;
  __device__ void operator()(std::size_t i) const {
    const T t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
};

}  // namespace cuda_impl

// AdamW (torch.optim.AdamW); see backend/cpu/optim.hpp for the update.
template <class T>
void adamw_update(const gpu& be, device_ptr<T> p_dev, dcptr<T> g_dev,
                  device_ptr<T> m_dev, device_ptr<T> v_dev, std::size_t n, T lr, T beta1, T beta2, T eps,
                  T weight_decay, T bias_correction1, T bias_correction2) {
  T* p = p_dev.get();
  const T* g = g_dev.get();
  T* m = m_dev.get();
  T* v = v_dev.get();
  const T decay = T(1) - lr * weight_decay;
  const T step_size = lr / bias_correction1;
  const T bc2_sqrt = std::sqrt(bias_correction2);
  cuda_impl::launch_n(be, n,
                      cuda_impl::adamw_op<T>{p, m, v, g, decay, step_size, bc2_sqrt, beta1, beta2, T(1) - beta1,
                                             T(1) - beta2, eps});
}

// SGD with momentum (torch.optim.SGD); buf may be null when momentum == 0.
template <class T>
void sgd_update(const gpu& be, device_ptr<T> p_dev, dcptr<T> g_dev,
                device_ptr<T> buf_dev, std::size_t n, T lr, T momentum, T dampening,
                T weight_decay, bool nesterov, bool first_step) {
  T* p = p_dev.get();
  const T* g = g_dev.get();
  T* buf = buf_dev.get();
  cuda_impl::launch_n(be, n,
                      cuda_impl::sgd_op<T>{p, buf, g, lr, momentum, T(1) - dampening, weight_decay, nesterov,
                                           first_step, momentum != T(0), weight_decay != T(0)});
}

// shadow = decay * shadow + (1 - decay) * p
template <class T>
void ema_update(const gpu& be, device_ptr<T> shadow_dev, dcptr<T> p_dev,
                std::size_t n, T decay) {
  T* shadow = shadow_dev.get();
  const T* p = p_dev.get();
  cuda_impl::launch_n(be, n, cuda_impl::ema_op<T>{shadow, p, decay, T(1) - decay});
}

// Exchanges a[0, n) and b[0, n).
template <class T>
void swap_buffers(const gpu& be, device_ptr<T> a_dev, device_ptr<T> b_dev, std::size_t n) {
  T* a = a_dev.get();
  T* b = b_dev.get();
  cuda_impl::launch_n(be, n, cuda_impl::swap_op<T>{a, b});
}

}  // namespace cpdiff::ops
