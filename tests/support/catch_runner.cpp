// Catch2's implementation, compiled once for the CPU and the CUDA test programs (~20 s of the build each time);
// their main() functions (catch_main.cpp, cuda_catch_main.cpp) call run_catch_session.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/catch_runner.hpp"

int cpdiff::testing::run_catch_session(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
