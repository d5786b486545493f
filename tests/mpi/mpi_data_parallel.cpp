// Data-parallel training over MPI (issue 16), run by CTest as `mpirun -np 2 cpdiff_test_mpi` (tests/mpi/).
// Every rank runs every test case, so the collectives inside the trainers match up. Each case trains a
// reference in one process on the whole batch (no communicator) beside the two-rank run and compares.
//   cpdiff_test_mpi --die-at-step K    instead: rank 1 dies (std::_Exit) at step K of a two-rank run;
//   cpdiff_test_mpi --throw-at-step K  rank 1 throws at step K (mpi_session::run must end the job);
// either way the job must end with an error, not hang (tests/mpi/rank_death.sh).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/train/autoencoder_trainer.hpp"
#include "cpdiff/train/diffusion_trainer.hpp"
#include "cpdiff/train/mpi_communicator.hpp"
#include "support/catch_runner.hpp"
#include "train/train_fixture.hpp"

using namespace cpdiff;

namespace {

train::mpi_communicator* world = nullptr;

// Largest |a - b| / (1 + |b|) over two stores' values.
template <class B>
double max_relative_difference(const parameter_store<float, B>& a, const parameter_store<float, B>& b) {
  REQUIRE(a.size() == b.size());
  const auto x = a.values(), y = b.values();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    worst = std::max(worst, std::abs(double(x.data()[i]) - double(y.data()[i])) / (1.0 + std::abs(double(y.data()[i]))));
  return worst;
}

bool same_values(const parameter_store<float, cpu>& a, const parameter_store<float, cpu>& b) {
  return std::equal(a.values().data(), a.values().data() + a.size(), b.values().data());
}

// A folder both ranks see: rank 0 names it, everyone uses the same name (one machine in the tests).
std::filesystem::path shared_folder(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("cpdiff_mpi_" + name + "_" + std::to_string(getppid()));
  if (world->is_root()) std::filesystem::create_directories(p);
  world->barrier();
  return p;
}

}  // namespace

TEST_CASE("mpi: rows of a batch are split evenly, the first ranks taking the remainder; bytes broadcast", "[mpi]") {
  CHECK(train::shard_of(8, 0, 2).begin == 0);
  CHECK(train::shard_of(8, 1, 2).begin == 4);
  CHECK(train::shard_of(7, 0, 2).rows() == 4);
  CHECK(train::shard_of(7, 1, 2).begin == 4);
  CHECK(train::shard_of(7, 1, 2).rows() == 3);
  CHECK(world->size() == 2);
  // broadcast_bytes (how nccl_communicator::over shares its id): every rank ends with rank 0's bytes
  std::string id(128, world->is_root() ? 'a' : 'b');  // 128 bytes, as an ncclUniqueId
  world->broadcast_bytes(id.data(), id.size(), 0);
  CHECK(id == std::string(128, 'a'));
}

TEST_CASE("mpi: two ranks train the autoencoder to the parameters one process reaches on the whole batch",
          "[mpi]") {
  const auto data = testing::low_rank_rows(30, 24, 5);
  // batch 8: shards of 4 and 4; batch 7: shards of 4 and 3 (weighted), and 30 % 7 = 2 rows in each epoch's
  // last batch, one per rank
  for (std::size_t batch : {8, 7}) {
    testing::tiny_ae one(24, 1), two(24, 1);
    const train::train_options o{.steps = 12, .batch_size = batch, .adamw = {.lr = 3e-3}, .seed = 4};
    train::autoencoder_trainer ref(one, data.cview(), o);
    auto po = o;
    po.comm = world;
    train::autoencoder_trainer dp(two, data.cview(), po);
    ref.run();
    dp.run();
    INFO("batch " << batch);
    // the same losses (the global batch's mean on every rank) and the same parameters, up to float sums
    REQUIRE(dp.history().size() == ref.history().size());
    for (std::size_t i = 0; i < ref.history().size(); ++i)
      CHECK(dp.history()[i].loss == Approx(ref.history()[i].loss).epsilon(1e-5));
    const double diff = max_relative_difference(two.parameters(), one.parameters());
    WARN("rank " << world->rank() << ", batch " << batch << ": autoencoder parameters, largest relative difference "
                  << diff << " after 12 steps");
    CHECK(diff < 1e-5);
  }
}

TEST_CASE("mpi: two ranks train the conditional diffusion model as one process does", "[mpi]") {
  testing::tiny_problem p;
  testing::tiny_unet one({2, 3}, 4, 50, 1), two({2, 3}, 4, 50, 1);
  const train::train_options o{.steps = 10, .batch_size = 6, .adamw = {.lr = 3e-3}, .ema_decay = 0.9, .seed = 8};
  train::diffusion_trainer ref(one, diffusion::noise_schedule(50), p.z.cview(), p.conditions(), o);
  auto po = o;
  po.comm = world;
  train::diffusion_trainer dp(two, diffusion::noise_schedule(50), p.z.cview(), p.conditions(), po);
  ref.run();
  dp.run();
  for (std::size_t i = 0; i < ref.history().size(); ++i)
    CHECK(dp.history()[i].loss == Approx(ref.history()[i].loss).epsilon(1e-5));
  const double diff = max_relative_difference(two.parameters(), one.parameters());
  WARN("rank " << world->rank() << ": U-Net parameters, largest relative difference " << diff << " after 10 steps");
  CHECK(diff < 1e-5);
  // the EMA follows the same parameters
  CHECK(dp.ema()->num_updates() == 10);
}

TEST_CASE("mpi: a two-rank run interrupted and resumed equals the uninterrupted one, resumed by one process too", "[mpi]") {
  const auto data = testing::low_rank_rows(30, 24, 5);
  const auto dir = shared_folder("resume");
  const auto ckpt = dir / "ae.ckpt";
  const train::train_options o{.steps = 10, .batch_size = 8, .adamw = {.lr = 3e-3}, .seed = 4, .comm = world};
  testing::tiny_ae whole(24, 1), first(24, 1), second(24, 1);
  train::autoencoder_trainer a(whole, data.cview(), o);
  a.run();
  {
    auto io = o;
    io.checkpoint_every = 4;
    io.checkpoint_path = ckpt;
    train::autoencoder_trainer b(first, data.cview(), io);
    b.run(6);  // the checkpoint holds step 4; steps 5 and 6 are lost with the "killed" run
  }
  REQUIRE(std::filesystem::exists(ckpt));  // written by rank 0, visible to all after save's barrier
  train::autoencoder_trainer c(second, data.cview(), o);
  c.resume(ckpt);
  CHECK(c.step_count() == 4);
  c.run();
  CHECK(same_values(second.parameters(), whole.parameters()));
  // the same checkpoint resumed by one process (each rank alone, no communicator): the state holds nothing of
  // the rank count, so it ends where the two-rank run does, up to the order of float sums
  testing::tiny_ae alone(24, 1);
  auto so = o;
  so.comm = nullptr;
  train::autoencoder_trainer d(alone, data.cview(), so);
  d.resume(ckpt);
  d.run();
  CHECK(max_relative_difference(alone.parameters(), whole.parameters()) < 1e-5);
  world->barrier();
  if (world->is_root()) std::filesystem::remove_all(dir);
}

TEST_CASE("mpi: ranks that disagree on the model or the data stop with a config_error on every rank", "[mpi]") {
  const auto data = testing::low_rank_rows(30, 24, 5);
  SECTION("another seed on rank 1: other initial parameters") {
    testing::tiny_ae ae(24, world->rank() == 1 ? 2 : 1);
    train::autoencoder_trainer t(ae, data.cview(), {.steps = 4, .batch_size = 8, .seed = 4, .comm = world});
    REQUIRE_THROWS_AS(t.run(1), config_error);
    testing::tiny_ae ae2(24, world->rank() == 1 ? 2 : 1);
    train::autoencoder_trainer t2(ae2, data.cview(), {.steps = 4, .batch_size = 8, .seed = 4, .comm = world});
    REQUIRE_THROWS_WITH(t2.run(1), Catch::Contains("disagree on the parameter values") &&
                                       Catch::Contains("train::autoencoder_trainer"));
  }
  SECTION("fewer samples on rank 1") {
    const auto fewer = testing::low_rank_rows(world->rank() == 1 ? 28 : 30, 24, 5);
    testing::tiny_ae ae(24, 1);
    train::autoencoder_trainer t(ae, fewer.cview(), {.steps = 4, .batch_size = 8, .seed = 4, .comm = world});
    REQUIRE_THROWS_WITH(t.run(1), Catch::Contains("disagree on the dataset size"));
  }
  SECTION("a batch smaller than the rank count") {
    testing::tiny_ae ae(24, 1);
    REQUIRE_THROWS_WITH(train::autoencoder_trainer(ae, data.cview(), {.batch_size = 1, .comm = world}),
                        Catch::Contains("each rank needs at least one row"));
  }
}

TEST_CASE("mpi: a batch-normalised model keeps the same parameters on both ranks", "[mpi]") {
  // BatchNorm normalises each rank's rows (PyTorch DDP without SyncBatchNorm); the running statistics are
  // averaged after every step, so the ranks stay identical even though the run differs from one process's.
  const auto data = testing::low_rank_rows(32, 40, 5);
  models::style_autoencoder<models::style_small> ae(40, 1, {.linear_skip = true});
  train::autoencoder_trainer t(ae, data.cview(), {.steps = 6, .batch_size = 8, .seed = 4, .comm = world});
  t.run();
  const std::uint64_t mine = train::values_fingerprint(ae.parameters());
  const auto [lo, hi] = world->min_max(mine);
  CHECK(lo == hi);
}

TEST_CASE("mpi: average_buffers sets every non-trainable entry to its mean over the ranks, in one all-reduce",
          "[mpi]") {
  models::style_autoencoder<models::style_small> ae(40, 1, {.linear_skip = true});
  auto& ps = ae.parameters();
  float* v = ps.values().data();
  const float k = float(world->rank() + 1);  // rank r holds (r + 1) * i at element i
  std::size_t buffers = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) v[i] = k * float(i % 1000);
  for (const auto& e : ps.entries()) buffers += e.trainable ? 0 : e.shape.size();
  REQUIRE(buffers > 0);  // BatchNorm running statistics
  tensor<float, cpu> scratch;
  train::average_buffers(*world, ps, scratch);
  const float mean_k = float(world->size() + 1) / 2.f;  // mean of 1..K
  for (const auto& e : ps.entries())
    for (std::size_t i = e.offset; i < e.offset + e.shape.size(); ++i) {
      INFO(e.name << " element " << i - e.offset);
      REQUIRE(v[i] == Approx((e.trainable ? k : mean_k) * float(i % 1000)));
    }
}

TEST_CASE("mpi: broadcast gives every rank the owner's values exactly; broadcast_values rank 0's parameters",
          "[mpi]") {
  const std::size_t owner = world->size() - 1;
  std::vector<double> d(7);
  std::vector<float> f(1000);
  // MPI_Bcast (mpi_communicator's override), then the interface's default (zeros and one sum) on fresh values
  const auto fill_mine = [&] {
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = (double(world->rank()) + 1) * (0.1 + double(i));
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = (float(world->rank()) + 1) * (1e-3f * float(i) - 0.3f);
  };
  const auto require_owners = [&] {
    for (std::size_t i = 0; i < d.size(); ++i) REQUIRE(d[i] == (double(owner) + 1) * (0.1 + double(i)));
    for (std::size_t i = 0; i < f.size(); ++i) REQUIRE(f[i] == (float(owner) + 1) * (1e-3f * float(i) - 0.3f));
  };
  fill_mine();
  world->broadcast(std::span<double>(d), owner);
  world->broadcast(std::span<float>(f), owner);
  require_owners();
  fill_mine();
  train::communicator& base = *world;
  base.communicator::broadcast(std::span<double>(d), owner);
  base.communicator::broadcast(std::span<float>(f), owner);
  require_owners();
  std::string id(128, world->rank() == owner ? '\xff' : 'b');
  id[0] = '\0';
  base.communicator::broadcast_bytes(id.data(), id.size(), owner);
  CHECK(id == std::string(1, '\0') + std::string(127, '\xff'));
  CHECK_THROWS_WITH(world->broadcast(std::span<float>(f), 2), Catch::Contains("owner rank 2 of 2 ranks"));
  CHECK_THROWS_WITH(base.communicator::broadcast(std::span<float>(f), 5), Catch::Contains("owner rank 5 of 2 ranks"));
  // two models built from different seeds (trainable and BatchNorm entries alike) end up as rank 0's
  models::style_autoencoder<models::style_small> ae(40, 100 + world->rank(), {.linear_skip = true});
  models::style_autoencoder<models::style_small> root_ae(40, 100, {.linear_skip = true});
  auto& ps = ae.parameters();
  for (std::size_t i = 0; i < ps.size(); ++i) ps.values().data()[i] += float(i % 7) * 0.01f * float(world->rank());
  train::broadcast_values(*world, ps);
  const float* want = root_ae.parameters().values().data();
  for (std::size_t i = 0; i < ps.size(); ++i) REQUIRE(ps.values().data()[i] == want[i]);
}

namespace {

// rank 1 disappears (a crash) or throws at step k of a two-rank run; rank 0 is then inside a collective
int fail_at_step(std::size_t k, bool crash) {
  const auto data = testing::low_rank_rows(30, 24, 5);
  testing::tiny_ae ae(24, 1);
  train::autoencoder_trainer t(ae, data.cview(), {.steps = 100, .batch_size = 8, .seed = 4, .comm = world});
  for (std::size_t s = 0; s < 100; ++s) {
    if (world->rank() == 1 && s == k) {
      if (!crash) throw io_error("fail_at_step: rank 1 fails at step " + std::to_string(k));
      std::cerr << "rank 1: dying at step " << k << std::endl;
      std::_Exit(3);
    }
    t.run(1);
  }
  return 0;  // not reached on a two-rank run
}

}  // namespace

int main(int argc, char** argv) {
  return train::mpi_session::run(argc, argv, [&](train::mpi_communicator& comm) {
    world = &comm;
    if (argc == 3 && std::string(argv[1]) == "--die-at-step") return fail_at_step(std::stoul(argv[2]), true);
    if (argc == 3 && std::string(argv[1]) == "--throw-at-step") return fail_at_step(std::stoul(argv[2]), false);
    const int failed = testing::run_catch_session(argc, argv);
    // a failure on one rank fails the job: the largest count over the ranks decides
    return comm.min_max(static_cast<std::uint64_t>(failed)).second > 0 ? 1 : 0;
  });
}
