// main() of the CPU test programs (Catch2's implementation: catch_runner.cpp).
#include "support/catch_runner.hpp"

int main(int argc, char* argv[]) { return cpdiff::testing::run_catch_session(argc, argv); }
