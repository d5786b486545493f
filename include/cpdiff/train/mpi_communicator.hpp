#pragma once
// mpi_communicator: train::communicator over MPI (Debian's OpenMPI: libopenmpi-dev openmpi-bin; CMake's
// FindMPI, target MPI::MPI_CXX). Not part of cpdiff.hpp: include it where a program trains under mpirun.
//
//   int main(int argc, char** argv) {
//     return cpdiff::train::mpi_session::run(argc, argv, [&](cpdiff::train::mpi_communicator& comm) {
//       train::autoencoder_trainer t(ae, data, {.batch_size = 64, .comm = &comm});
//       t.run();                                           // each rank takes its rows of every batch
//       return 0;
//     });
//   }
//   mpirun -np 2 ./program
//
// Host memory only: a cuda backend's gradients are staged through the host (data_parallel.hpp); NCCL keeps them
// on the device (train/nccl_communicator.cuh). Errors: MPI's default handler aborts the job on an MPI failure;
// a rank that throws must end the job too, or the others wait in their next collective forever:
// mpi_session's destructor calls MPI_Abort when an exception is unwinding it, and a program that catches its
// own errors calls mpi_session::abort(code). mpi_session::run does both: an exception or a non-zero return of
// the body prints the rank's error and ends the whole job with MPI_Abort; a zero return finalises.
#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iostream>
#include <span>
#include <string>
#include <utility>

#include "cpdiff/core/error.hpp"
#include "cpdiff/train/communicator.hpp"

namespace cpdiff::train {

namespace mpi_detail {
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw_error<config_error>("train::mpi_communicator", call, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}
// MPI counts are int: larger buffers go in pieces.
template <class F>
void in_chunks(std::size_t n, F&& f) {
  constexpr std::size_t chunk = std::size_t(1) << 30;
  for (std::size_t i = 0; i < n; i += chunk) f(i, static_cast<int>(std::min(chunk, n - i)));
}
}  // namespace mpi_detail

// MPI_Init / MPI_Finalize for a program's lifetime (MPI_Init only when nobody has called it yet).
class mpi_session {
 public:
  mpi_session(int& argc, char**& argv) : unwinding_at_start_(std::uncaught_exceptions()) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      mpi_detail::check(MPI_Init(&argc, &argv), "MPI_Init");
      owner_ = true;
    }
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session() {
    if (std::uncaught_exceptions() > unwinding_at_start_) abort(1);  // an error leaves: end every rank
    if (owner_) MPI_Finalize();
  }
  // Ends every rank of the job now with `code` (after printing an error: the others may be in a collective).
  [[noreturn]] static void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::terminate();  // MPI_Abort does not return
  }

  // A program's body under MPI: body(mpi_communicator&) -> int. An exception is printed ("cpdiff: rank 1 of 2:
  // <what>") and, like a non-zero return, ends every rank with MPI_Abort: never one rank waiting forever in a
  // collective for a rank that has stopped. Returns 0 after MPI_Finalize.
  template <class Body>
  static int run(int& argc, char**& argv, Body&& body);

 private:
  int unwinding_at_start_;
  bool owner_ = false;
};

class mpi_communicator final : public communicator {
 public:
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    int r = 0, s = 0;
    mpi_detail::check(MPI_Comm_rank(comm_, &r), "MPI_Comm_rank");
    mpi_detail::check(MPI_Comm_size(comm_, &s), "MPI_Comm_size");
    rank_ = static_cast<std::size_t>(r);
    size_ = static_cast<std::size_t>(s);
  }

  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void sum(std::span<float> x) override { all_reduce(x.data(), x.size(), MPI_FLOAT); }
  void sum(std::span<double> x) override { all_reduce(x.data(), x.size(), MPI_DOUBLE); }

  std::pair<std::uint64_t, std::uint64_t> min_max(std::uint64_t v) override {
    std::uint64_t lo = v, hi = v;
    mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm_), "MPI_Allreduce(min)");
    mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm_), "MPI_Allreduce(max)");
    return {lo, hi};
  }
  void barrier() override { mpi_detail::check(MPI_Barrier(comm_), "MPI_Barrier"); }
  void broadcast(std::span<float> x, std::size_t owner) override { broadcast_bytes(x.data(), x.size_bytes(), owner); }
  void broadcast(std::span<double> x, std::size_t owner) override { broadcast_bytes(x.data(), x.size_bytes(), owner); }
  // bytes [data, data + n) = rank owner's, with MPI_Bcast (bit for bit)
  void broadcast_bytes(void* data, std::size_t n, std::size_t owner) override {
    expect_owner(owner);
    mpi_detail::in_chunks(n, [&](std::size_t at, int count) {
      mpi_detail::check(MPI_Bcast(static_cast<char*>(data) + at, count, MPI_BYTE, static_cast<int>(owner), comm_),
                        "MPI_Bcast");
    });
  }

  MPI_Comm handle() const { return comm_; }

 private:
  void all_reduce(void* data, std::size_t n, MPI_Datatype type) {
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    mpi_detail::in_chunks(n, [&](std::size_t at, int count) {
      mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + at * static_cast<std::size_t>(bytes),
                                      count, type, MPI_SUM, comm_),
                        "MPI_Allreduce(sum)");
    });
  }

  MPI_Comm comm_;
  std::size_t rank_ = 0, size_ = 1;
};

template <class Body>
int mpi_session::run(int& argc, char**& argv, Body&& body) {
  mpi_session session(argc, argv);
  mpi_communicator comm;
  int code = 1;
  try {
    code = body(comm);
  } catch (const std::exception& e) {
    std::cerr << "cpdiff: rank " << comm.rank() << " of " << comm.size() << ": " << e.what() << std::endl;
    abort(1);
  }
  if (code != 0) abort(code);
  return 0;
}

}  // namespace cpdiff::train
