// main() of the CUDA test programs: Catch2's runner behind a device check. Without a usable GPU the
// program prints why and exits with 77, which CTest reports as "Skipped" (tests/CMakeLists.txt sets
// SKIP_RETURN_CODE), so a machine without a GPU never counts these tests as passed. Catch2's implementation:
// catch_runner.cpp.
#include <cstdio>
#include <string>

#include "support/catch_runner.hpp"
#include "support/cuda_device.hpp"

// Listing the tests (--list-tests, --list-tags, -l, -t) needs no device.
static bool only_lists(int argc, char* argv[]) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--list", 0) == 0 || a == "-l" || a == "-t") return true;
  }
  return false;
}

int main(int argc, char* argv[]) {
  if (!cpdiff::testing::has_cuda_device() && !only_lists(argc, argv)) {
    std::printf("SKIPPED: no CUDA device (%s): none of this program's tests ran.\n",
                cpdiff::testing::cuda_unavailable_reason().c_str());
    std::fflush(stdout);
    return cpdiff::testing::skip_return_code;
  }
  return cpdiff::testing::run_catch_session(argc, argv);
}
