#pragma once
// communicator: how the processes of one data-parallel training job talk (train/data_parallel.hpp). The
// trainers take one through train_options::comm; nullptr (the default) is one process and costs nothing.
// Implementations: train::mpi_communicator (train/mpi_communicator.hpp, MPI; host memory, and device memory
// staged through the host) and train::nccl_communicator (train/nccl_communicator.cuh, NCCL; device memory).
// Neither is included by cpdiff.hpp: the library needs no MPI or NCCL unless a program includes them.
//
// Every call is collective: each rank must make the same calls in the same order, or the job hangs (MPI)
// or fails. The trainers keep to that; a rank that throws ends the job (mpi_session calls MPI_Abort).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cpdiff/core/error.hpp"

namespace cpdiff::train {

class communicator {
 public:
  virtual ~communicator() = default;
  virtual std::size_t rank() const = 0;
  virtual std::size_t size() const = 0;
  virtual std::string name() const = 0;  // "mpi", "nccl": for messages

  // x[i] = the sum over ranks of x[i], in place (host memory).
  virtual void sum(std::span<float> x) = 0;
  virtual void sum(std::span<double> x) = 0;
  // The same over n floats of device memory (a CUDA backend's buffers). Only where device_memory() is true;
  // otherwise the caller stages through the host (data_parallel.hpp does).
  virtual bool device_memory() const { return false; }
  virtual void sum_device(float* x, std::size_t n) {
    (void)x, (void)n;
    throw_error<config_error>("train::communicator::sum_device", name(), " sums host memory only");
  }
  // x on every rank = rank owner's x (host memory): results one rank computed (a fine-tuned LoRA's checkpoints, a
  // pre-trained base), an NCCL id. By default the other ranks zero their copy and one sum follows (exact: one value
  // plus zeros, though -0 arrives as +0); mpi_communicator sends it with MPI_Bcast.
  virtual void broadcast(std::span<float> x, std::size_t owner) { broadcast_by_sum(x, owner); }
  virtual void broadcast(std::span<double> x, std::size_t owner) { broadcast_by_sum(x, owner); }
  // The same for bytes: by default each byte travels as a float (0-255: a sum of one byte and zeros is exact).
  virtual void broadcast_bytes(void* data, std::size_t n, std::size_t owner) {
    auto* bytes = static_cast<unsigned char*>(data);
    std::vector<float> as_float(bytes, bytes + n);
    broadcast(std::span<float>(as_float), owner);
    for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(as_float[i]);
  }
  // {min, max} over ranks of v: agreement checks.
  virtual std::pair<std::uint64_t, std::uint64_t> min_max(std::uint64_t v) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;

  bool is_root() const { return rank() == 0; }

 protected:
  // Every rank checks the owner before a broadcast's collective, so a bad one fails everywhere instead of hanging.
  void expect_owner(std::size_t owner) const {
    CPDIFF_CHECK(owner < size(), config_error, "train::communicator::broadcast", "owner rank ", owner, " of ", size(),
                 " ranks (", name(), ")");
  }

 private:
  template <class T>
  void broadcast_by_sum(std::span<T> x, std::size_t owner) {
    expect_owner(owner);
    if (rank() != owner) std::fill(x.begin(), x.end(), T(0));
    sum(x);
  }
};

// Whether this process was started by mpirun / mpiexec (OpenMPI sets OMPI_COMM_WORLD_SIZE; PMI and PMIx
// launchers their own): a program built with MPI then runs data-parallel (mpi_session::run).
inline bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

}  // namespace cpdiff::train
