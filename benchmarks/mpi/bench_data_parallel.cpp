// Data-parallel training steps over MPI (issue 16): the share of a step the gradient all-reduce takes.
//   mpirun --allow-run-as-root -np K -x OMP_NUM_THREADS=T build/benchmarks/cpdiff_bench_data_parallel
// (add --bind-to none when T > 1: OpenMPI binds each rank to one core by default, and T threads would share it)
// Workloads (SPEC.md's medium case, bench_models.cpp's sizes), each a global batch of 16 split over the K ranks:
//   ae_medium_train_step      autoencoder_trainer step of the p-diff medium AE (n = 73,728)
//   unet_paper_train_step     diffusion_trainer step of the p-diff U-Net, latent [4, 117] + condition 512
//   *_allreduce               the all-reduce of that model's flat gradient buffer alone (what the step adds)
// Every rank runs the same fixed iteration counts (the collectives must pair up: Google Benchmark's adaptive
// counts would differ between ranks); one untimed step first (steady state); rank 0 prints.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/pdiff_autoencoder.hpp"
#include "cpdiff/models/pdiff_unet.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"
#include "cpdiff/train/mpi_communicator.hpp"

namespace {

using namespace cpdiff;
train::communicator* world = nullptr;
constexpr std::size_t global_batch = 16;

std::vector<float> normal_rows(std::size_t m, std::size_t n, std::uint64_t seed) {
  std::vector<float> v(m * n);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = philox_normal(seed, 0, i);
  return v;
}

void label(benchmark::State& s, std::size_t params) {
  s.SetLabel(std::to_string(world->size()) + " ranks, " + std::to_string(global_batch / world->size()) +
             " rows each, " + std::to_string(params) + " parameters");
}

void ae_medium_train_step(benchmark::State& s) {
  constexpr std::size_t n = 73728;
  models::pdiff_autoencoder<models::pdiff_medium> ae(n, 1);
  const auto data = normal_rows(2 * global_batch, n, 3);
  train::autoencoder_trainer t(ae, const_view<float>(data.data(), {2 * global_batch, n}),
                               {.steps = 1000, .batch_size = global_batch, .seed = 1, .comm = world});
  t.run(1);
  for (auto _ : s) t.run(1);
  label(s, ae.parameters().size());
}

void unet_paper_train_step(benchmark::State& s) {
  models::pdiff_unet<models::pdiff_unet_default> net({4, 117}, 512, 1000, 1);
  const auto z = normal_rows(2 * global_batch, 4 * 117, 4);
  const auto c = normal_rows(2 * global_batch, 512, 5);
  train::diffusion_trainer t(net, diffusion::noise_schedule(1000), const_view<float>(z.data(), {2 * global_batch, 4, 117}),
                             train::condition_set<float>::per_sample(const_view<float>(c.data(), {2 * global_batch, 512})),
                             {.steps = 1000, .batch_size = global_batch, .seed = 1, .comm = world});
  t.run(1);
  for (auto _ : s) t.run(1);
  label(s, net.parameters().size());
}

template <class Model>
void allreduce(benchmark::State& s, Model& m) {
  auto g = m.parameters().grads();
  world->sum(std::span<float>(g.data(), g.size()));
  for (auto _ : s) world->sum(std::span<float>(g.data(), g.size()));
  s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * g.size() * sizeof(float)));
  label(s, g.size());
}
void ae_medium_allreduce(benchmark::State& s) {
  models::pdiff_autoencoder<models::pdiff_medium> ae(73728, 1);
  allreduce(s, ae);
}
void unet_paper_allreduce(benchmark::State& s) {
  models::pdiff_unet<models::pdiff_unet_default> net({4, 117}, 512, 1000, 1);
  allreduce(s, net);
}

// Rank 0 reports; the others run the same benchmarks silently.
class silent_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  return train::mpi_session::run(argc, argv, [&](train::mpi_communicator& comm) {
    world = &comm;
    const auto reg = [](const char* name, void (*fn)(benchmark::State&), int iterations) {
      benchmark::RegisterBenchmark(name, fn)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(iterations);
    };
    reg("ae_medium_train_step", ae_medium_train_step, 3);
    reg("ae_medium_allreduce", ae_medium_allreduce, 20);
    reg("unet_paper_train_step", unet_paper_train_step, 3);
    reg("unet_paper_allreduce", unet_paper_allreduce, 20);
    benchmark::Initialize(&argc, argv);
    silent_reporter quiet;
    if (comm.is_root()) benchmark::RunSpecifiedBenchmarks();
    else benchmark::RunSpecifiedBenchmarks(&quiet);
    benchmark::Shutdown();
    return 0;
  });
}
