#pragma once
// A write that fails part way, made on purpose: runs f() with the process's file size limit (RLIMIT_FSIZE) at
// `bytes` and SIGXFSZ ignored, so that a write past the limit fails (EFBIG) instead of killing the process, then
// restores both. Returns whether f threw cpdiff::io_error. Tests of "a save that fails part way leaves the old set".
#include <csignal>
#include <cstdint>
#include <stdexcept>

#include <sys/resource.h>

#include "cpdiff/core/error.hpp"

namespace cpdiff::testing {

template <class F>
bool throws_io_error_past_file_size(std::uintmax_t bytes, F&& f) {
  rlimit old{};
  if (::getrlimit(RLIMIT_FSIZE, &old) != 0) throw std::runtime_error("getrlimit(RLIMIT_FSIZE) failed");
  rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(bytes);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
    std::signal(SIGXFSZ, old_handler);
    throw std::runtime_error("setrlimit(RLIMIT_FSIZE) failed");
  }
  bool threw = false;
  try {
    f();
  } catch (const io_error&) {
    threw = true;
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  return threw;
}

}  // namespace cpdiff::testing
