// Cond P-Diff on Fashion-MNIST, end to end, on the CPU: the README's main job, the paper's three settings in
// miniature (SPEC.md):
//
//   1. tasks   (fashion/tasks.hpp): six classification tasks on the frozen base, a LoRA each; the condition is
//              the task's written description through a frozen text encoder.
//   2. styles  (fashion/styles.hpp): eight image styles (rotated, flipped, blurred, edges, ...), a LoRA each; the
//              condition is a handful of images in the style.
//   3. interp  (fashion/interp.hpp): two style LoRAs blended, theta(l) = (1 - l) theta_1 + l theta_2, generated
//              for values of l never seen in training.
//
// The frozen base (--base): vit, the default, a Hugging Face-layout ViT with LoRA on query / value (n = 24,576),
// or mlp, a 784-64-10 MLP with LoRA on fc1 / fc2 (n = 3,688). Each experiment: collect LoRA checkpoints per
// condition -> normalise -> train the parameter autoencoder -> train the conditional diffusion -> generate N
// LoRAs per condition -> de-normalise -> load into the frozen base -> evaluate, with the paper's protocol (best /
// mean / median of the generated beside the trained checkpoints and the base without LoRA) and a noise control.
// Results go to --out: report.md, report.json, figures, and every generated adapter as a PEFT folder.
//
// The defaults, and why (each measured; README "Quick start"): all conditions' LoRAs are z-scored together
// (--normalise pooled), so the generated vector itself must say which condition it is for; the appendix's style
// autoencoder (BatchNorm, Tanh latent, a Linear skip) because p-diff's InstanceNorm divides each vector by its own
// scale and cannot tell pooled conditions apart; an MLP denoiser beside the condition feature (the paper's
// U-Nets: --denoiser unet); the style condition a Linear on the style images' pixels (the style-image encoder's
// global pooling cannot tell rot90 from hflip).
//
// fashion/experiment.hpp holds what the experiments share; fashion/program.hpp the program over a backend
// (cond_pdiff_fashion_cuda.cu runs it with the models on a GPU). Built with MPI (CMake found it:
// CPDIFF_EXAMPLE_MPI), `mpirun -np K` runs it data-parallel, unchanged.
#include "fashion/program.hpp"

#if defined(CPDIFF_EXAMPLE_MPI)
#include <cpdiff/train/mpi_communicator.hpp>
#endif

int main(int argc, char** argv) {
  cpdiff::bound_openmp_spin_wait(argv);  // fast beside another busy program (core/openmp_wait.hpp)
#if defined(CPDIFF_EXAMPLE_MPI)
  // a failing rank ends every rank (mpi_session::run), with the program's exit status
  if (cpdiff::train::launched_by_mpirun())
    return cpdiff::train::mpi_session::run(argc, argv, [&](cpdiff::train::mpi_communicator& comm) {
      return fashion::fashion_main<cpdiff::cpu>(argc, argv, &comm);
    });
#else
  if (cpdiff::train::launched_by_mpirun())
    std::cerr << "cond_pdiff_fashion: started by mpirun, but built without MPI: each rank runs alone\n";
#endif
  return fashion::fashion_main<cpdiff::cpu>(argc, argv);
}
