// Built against an installed cpdiff with cpdiff_cuda_target(): one linear layer on the GPU, on a stream of its own.
#include <cpdiff/cpdiff_cuda.cuh>

#include <cstdio>

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::puts("cpdiff CUDA consumer: built; no GPU here to run it");
    return 0;
  }
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  cpdiff::parameter_store<float, cpdiff::gpu> ps(cpdiff::gpu{}.on(s));  // every kernel below runs on s
  cpdiff::rng g{1};
  cpdiff::nn::linear<3, 2, float, cpdiff::gpu> fc(ps, "fc", g);
  cpdiff::tensor<float, cpdiff::gpu> x(cpdiff::shape{4, 3});
  cpdiff::ops::fill_normal(ps.backend(), x.view(), 0.0f, 1.0f, 1, 0);
  const auto y = fc.forward(x.cview());
  const auto host = cpdiff::ops::to_host(ps.backend(), y);
  std::printf("cpdiff CUDA consumer: y [%zu, %zu], %zu values on the host: ok\n", y.dim(0), y.dim(1), host.size());
  cudaStreamDestroy(s);
  return host.size() == 8 ? 0 : 1;
}
