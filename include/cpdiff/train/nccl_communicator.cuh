#pragma once
// nccl_communicator: train::communicator over NCCL (the copy in the CUDA toolkit; link CUDA::cudart and nccl), for
// trainers of cuda-backend models: sum_device() all-reduces the gradient buffer where it lies, on the stream the
// backend queues its kernels on, so it follows the backward pass without a copy to the host. Not part of
// cpdiff_cuda.cuh: include it where a program trains on several GPUs.
//
//   one GPU per process, the NCCL id handed round by MPI (train/mpi_communicator.hpp):
//     train::mpi_communicator world;
//     cudaSetDevice(local_rank);
//     auto nccl = train::nccl_communicator::over(world);     // rank 0 makes the id, broadcast_bytes shares it
//     train::autoencoder_trainer t(ae, data, {.batch_size = 64, .comm = &nccl});
//   one process, one GPU (a test): train::nccl_communicator::single();
//
// Host-memory calls (the loss, agreement checks, barrier) go through a small device scratch buffer.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "cpdiff/core/error.hpp"
#include "cpdiff/train/communicator.hpp"

namespace cpdiff::train {

namespace nccl_detail {
inline void check(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess) throw_error<config_error>("train::nccl_communicator", call, " failed: ", ncclGetErrorString(rc));
}
inline void check(cudaError_t rc, const char* call) {
  if (rc != cudaSuccess) throw_error<config_error>("train::nccl_communicator", call, " failed: ", cudaGetErrorString(rc));
}
}  // namespace nccl_detail

class nccl_communicator final : public communicator {
 public:
  // Rank `rank` of `size`, all ranks passing the same id (ncclGetUniqueId on one rank, shared by the caller).
  nccl_communicator(std::size_t rank, std::size_t size, const ncclUniqueId& id, cudaStream_t stream = nullptr)
      : rank_(rank), size_(size), stream_(stream) {
    nccl_detail::check(ncclCommInitRank(&comm_, static_cast<int>(size), id, static_cast<int>(rank)), "ncclCommInitRank");
    nccl_detail::check(cudaMalloc(&scratch_, scratch_bytes), "cudaMalloc");
  }
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;
  nccl_communicator(nccl_communicator&& o) noexcept
      : comm_(std::exchange(o.comm_, nullptr)), rank_(o.rank_), size_(o.size_), stream_(o.stream_),
        scratch_(std::exchange(o.scratch_, nullptr)) {}
  ~nccl_communicator() override {
    if (scratch_) cudaFree(scratch_);
    if (comm_) ncclCommDestroy(comm_);
  }

  // One rank on the current device.
  static nccl_communicator single(cudaStream_t stream = nullptr) {
    ncclUniqueId id;
    nccl_detail::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    return nccl_communicator(0, 1, id, stream);
  }
  // Every rank of `host` (an mpi_communicator) on its current device; rank 0's NCCL id reaches the others with
  // host.broadcast_bytes.
  static nccl_communicator over(communicator& host, cudaStream_t stream = nullptr) {
    ncclUniqueId id;
    if (host.is_root()) nccl_detail::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host.broadcast_bytes(&id, sizeof id, 0);
    return nccl_communicator(host.rank(), host.size(), id, stream);
  }

  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  bool device_memory() const override { return true; }
  void sum_device(float* x, std::size_t n) override {
    nccl_detail::check(ncclAllReduce(x, x, n, ncclFloat, ncclSum, comm_, stream_), "ncclAllReduce");
  }
  void sum(std::span<float> x) override { through_scratch(x.data(), x.size_bytes(), x.size(), ncclFloat, ncclSum); }
  void sum(std::span<double> x) override { through_scratch(x.data(), x.size_bytes(), x.size(), ncclDouble, ncclSum); }
  std::pair<std::uint64_t, std::uint64_t> min_max(std::uint64_t v) override {
    std::uint64_t lo = v, hi = v;
    through_scratch(&lo, sizeof lo, 1, ncclUint64, ncclMin);
    through_scratch(&hi, sizeof hi, 1, ncclUint64, ncclMax);
    return {lo, hi};
  }
  void barrier() override {
    std::uint64_t one = 1;
    through_scratch(&one, sizeof one, 1, ncclUint64, ncclSum);
  }

 private:
  static constexpr std::size_t scratch_bytes = 1 << 16;

  // Host values reduced in pieces through the device scratch buffer; returns when they are back on the host.
  void through_scratch(void* host, std::size_t bytes, std::size_t count, ncclDataType_t type, ncclRedOp_t op) {
    const std::size_t elem = count ? bytes / count : 1, per = scratch_bytes / elem;
    auto* p = static_cast<char*>(host);
    for (std::size_t at = 0; at < count; at += per) {
      const std::size_t n = count - at < per ? count - at : per;
      nccl_detail::check(cudaMemcpyAsync(scratch_, p + at * elem, n * elem, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      nccl_detail::check(ncclAllReduce(scratch_, scratch_, n, type, op, comm_, stream_), "ncclAllReduce");
      nccl_detail::check(cudaMemcpyAsync(p + at * elem, scratch_, n * elem, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
      nccl_detail::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
  }

  ncclComm_t comm_ = nullptr;
  std::size_t rank_ = 0, size_ = 1;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
};

}  // namespace cpdiff::train
