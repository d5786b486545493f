// The `cpdiff` command: Cond P-Diff on LoRA adapters trained elsewhere (PEFT folders).
//   cpdiff inspect DIR...                                   each folder's layout; whether they share one
//   cpdiff fit --manifest FILE --out MODEL [--quick] ...     learn a generator from the adapters a manifest lists
//   cpdiff generate --model MODEL --text T --count N --out DIR   N adapters for a condition, as PEFT folders
// Errors name the folder, the file and the key, field or manifest line; the exit status is 0 on success, 1 on
// bad input, 2 on bad usage.
// Built with MPI (CMake found it: CPDIFF_CLI_MPI), `mpirun -np K cpdiff fit ...` trains data-parallel: the K ranks
// share every batch (train/data_parallel.hpp), rank 0 prints and writes the model.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/core/openmp_wait.hpp"
#include "fit_command.hpp"
#include "generate_command.hpp"
#include "inspect_command.hpp"
#if defined(CPDIFF_CLI_MPI)
#include "cpdiff/train/mpi_communicator.hpp"
#endif

namespace {

constexpr const char* usage_text =
    "usage: cpdiff <command> [arguments]\n"
    "\n"
    "Cond P-Diff on LoRA adapters saved by PEFT (adapter_config.json + adapter_model.safetensors).\n"
    "\n"
    "commands:\n"
    "  inspect DIR...   each adapter folder's layout: rank, alpha, dtype, modules with their lora_A / lora_B\n"
    "                   shapes, n (parameters, the length of the vector Cond P-Diff learns); with several\n"
    "                   folders, whether they share one layout (exit status 1 when they do not)\n"
    "  fit              learn a generator from the adapters a manifest lists, each with its condition\n"
    "                   (a text or a vector), and write it to a folder\n"
    "  generate         generate adapters for a condition with a fitted generator, as PEFT folders\n"
    "\n"
    "cpdiff <command> --help: that command's usage.\n";

int run_command(const std::vector<std::string>& args, cpdiff::train::communicator* comm) {
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    if (args[0] == "inspect") return cli::inspect(rest);
    if (args[0] == "fit") return cli::fit(rest, comm);
    if (args[0] == "generate") return cli::generate(rest);
  } catch (const std::exception& e) {
    std::cerr << "cpdiff " << args[0];
    if (comm) std::cerr << " (rank " << comm->rank() << " of " << comm->size() << ")";
    std::cerr << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "cpdiff: unknown command '" << args[0] << "'\n\n" << usage_text;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  cpdiff::bound_openmp_spin_wait(argv);  // fast beside another busy program (core/openmp_wait.hpp)
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage_text;
    return args.empty() ? 2 : 0;
  }
#if defined(CPDIFF_CLI_MPI)
  // a failing rank ends every rank (mpi_session::run), with this command's exit status
  if (args[0] == "fit" && cpdiff::train::launched_by_mpirun())
    return cpdiff::train::mpi_session::run(argc, argv, [&](cpdiff::train::mpi_communicator& comm) {
      return run_command(args, &comm);
    });
#else
  if (args[0] == "fit" && cpdiff::train::launched_by_mpirun())
    std::cerr << "cpdiff fit: started by mpirun, but this cpdiff was built without MPI: each rank fits alone\n";
#endif
  return run_command(args, nullptr);
}
