#pragma once
// communicator: how the processes of one data-parallel training job talk (train/data_parallel.hpp). The
// trainers take one through train_options::comm; nullptr (the default) is one process and costs nothing.
// Implementations: train::mpi_communicator (train/mpi_communicator.hpp, MPI; host memory, and device memory
// staged through the host) and train::nccl_communicator (train/nccl_communicator.cuh, NCCL; device memory).
// Neither is included by cpdiff.hpp: the library needs no MPI or NCCL unless a program includes them.
//
// Every call is collective: each rank must make the same calls in the same order, or the job hangs (MPI)
// or fails. The trainers keep to that; a rank that throws ends the job (mpi_session calls MPI_Abort).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>

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
  // {min, max} over ranks of v: agreement checks.
  virtual std::pair<std::uint64_t, std::uint64_t> min_max(std::uint64_t v) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;

  bool is_root() const { return rank() == 0; }
};

// Whether this process was started by mpirun / mpiexec (OpenMPI sets OMPI_COMM_WORLD_SIZE; PMI and PMIx
// launchers their own): a program built with MPI then runs data-parallel (mpi_session::run).
inline bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

}  // namespace cpdiff::train
