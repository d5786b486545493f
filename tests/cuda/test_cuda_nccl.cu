// train::nccl_communicator on one GPU (issue 16): a one-rank NCCL communicator's all-reduces leave device and host
// buffers as they are, its agreement check and barrier return, and the trainers' gradient all-reduce helper
// (data_parallel.hpp) reduces a cuda parameter store's gradients on the device. More ranks need more GPUs:
// benchmarks/gpu_check.sh runs this on a lent device.
#include <catch2/catch.hpp>

#include <vector>

#include "cpdiff/cpdiff_cuda.cuh"
#include "cpdiff/train/nccl_communicator.cuh"
#include "support/cuda_device.hpp"

using namespace cpdiff;

TEST_CASE("cuda nccl: a one-rank communicator sums in place, agrees with itself and reduces a store's gradients",
          "[cuda][nccl]") {
  CPDIFF_REQUIRE_CUDA_OR_SKIP();
  auto comm = train::nccl_communicator::single();
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  CHECK(comm.device_memory());

  tensor<float, gpu> x({1000});
  ops::fill_normal(gpu{}, x.view(), 0.f, 1.f, 1, 0);
  const std::vector<float> before = ops::to_host(gpu{}, x.cview());
  comm.sum_device(x.data().get(), x.size());
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(ops::to_host(gpu{}, x.cview()) == before);  // the sum over one rank: bit-equal

  std::vector<double> h{1.5, -2.25, 1e300};
  comm.sum(std::span<double>(h));
  CHECK(h == std::vector<double>{1.5, -2.25, 1e300});
  const auto [lo, hi] = comm.min_max(42);
  CHECK(lo == 42);
  CHECK(hi == 42);
  comm.barrier();

  // weight 0.25 (a rank holding a quarter of the batch): gradients scaled, then summed over the one rank
  parameter_store<float, gpu> ps;
  ps.add("w", {10});
  ops::fill(gpu{}, ps.grads(), 2.f);
  train::all_reduce_gradients(comm, ps, 0.25);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const parameter_store<float, gpu>& reduced = ps;
  CHECK(ops::to_host(gpu{}, reduced.grads()) == std::vector<float>(10, 0.5f));
}
