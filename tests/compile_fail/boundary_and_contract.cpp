// Compile-fail checks of the backend boundary and the layer contract (tests/CMakeLists.txt runs this file
// through the compiler once per case and expects the case's diagnostic; without a case it must compile).
// A stand-in device backend (device memory space, host storage) lets a CPU-only build check the device rules.
#include <string>
#include <vector>

#include "cpdiff/nn/activation.hpp"
#include "cpdiff/nn/linear.hpp"
#include "cpdiff/nn/sequential.hpp"
#include "cpdiff/tensor/tensor.hpp"

struct stand_in_device : cpdiff::ops::backend_tag {
  int stream = 0;  // state, like gpu's stream: layers may not default-build it
};
template <>
struct cpdiff::backend_traits<stand_in_device> {
  using memory_space = device_space;
  template <class T>
  using buffer = host_buffer<T>;
  static constexpr const char* name = "stand_in_device";
};

int main() {
  using namespace cpdiff;
  tensor<float, stand_in_device> t(shape{4});
  tensor<float, cpu> h(shape{4});
  h.data()[0] = 1.0f;  // host memory: element access is fine
  [[maybe_unused]] device_ptr<float> d = t.data();
#if defined(CASE_DEVICE_DATA_INDEX)
  t.data()[0] = 1.0f;  // a GPU tensor's storage is not host memory
#elif defined(CASE_DEVICE_VIEW_DEREF)
  float v = *t.view().data();
  (void)v;
#elif defined(CASE_HOST_POINTER_AS_DEVICE)
  std::vector<float> host(4);
  device_ptr<float> p = host.data();  // a host address does not become a device one
  (void)p;
#elif defined(CASE_DEVICE_POINTER_AS_HOST)
  float* p = t.data();  // nor the other way round
  (void)p;
#elif defined(CASE_STATEFUL_BACKEND_DEFAULT)
  nn::relu<float, stand_in_device> r;  // must come from the store: parameter_store<float, stand_in_device>
  (void)r;
#elif defined(CASE_SEQUENTIAL_SIZES)
  parameter_store<float, cpu> ps;
  rng g{0};
  nn::sequential<nn::linear<32, 64>, nn::relu<>, nn::linear<65, 16>> s(ps, "s", g);
#elif defined(CASE_SEQUENTIAL_NOT_A_LAYER)
  parameter_store<float, cpu> ps;
  rng g{0};
  nn::sequential<nn::linear<4, 4>, std::string> s(ps, "s", g);
#elif defined(CASE_SEQUENTIAL_MIXED_TYPES)
  parameter_store<float, cpu> ps;
  rng g{0};
  nn::sequential<nn::linear<4, 4>, nn::relu<double>> s(ps, "s", g);
#else
  parameter_store<float, stand_in_device> dps;
  nn::relu<float, stand_in_device> r(dps);  // the control: built from the store, it compiles
  (void)r;
#endif
  return 0;
}
