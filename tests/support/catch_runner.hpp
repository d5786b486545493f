#pragma once
// Catch2's session (support/catch_runner.cpp): Catch::Session is declared only where its implementation is
// compiled, so the test programs' main() functions reach it through this function.
namespace cpdiff::testing {
int run_catch_session(int argc, char* argv[]);
}
