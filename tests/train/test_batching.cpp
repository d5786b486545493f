#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/train/batching.hpp"

using namespace cpdiff;

TEST_CASE("epoch_permutation: a permutation, reproducible from (seed, epoch), different across epochs",
          "[train][batching]") {
  const auto p0 = train::epoch_permutation(50, 7, 0);
  auto sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> iota(50);
  std::iota(iota.begin(), iota.end(), std::size_t{0});
  CHECK(sorted == iota);
  CHECK(train::epoch_permutation(50, 7, 0) == p0);
  CHECK(train::epoch_permutation(50, 7, 1) != p0);
  CHECK(train::epoch_permutation(50, 8, 0) != p0);
  CHECK(p0 != iota);
  CHECK(train::epoch_permutation(1, 7, 0) == std::vector<std::size_t>{0});
}

TEST_CASE("epoch_permutation: every element lands in every position about equally often", "[train][batching]") {
  // 4000 epochs of n = 5: each (element, position) count ~ 800; a biased shuffle (e.g. j over {0..n-1}
  // at every step) is off by far more than 15%.
  constexpr std::size_t n = 5, epochs = 4000;
  std::size_t count[n][n] = {};
  for (std::size_t e = 0; e < epochs; ++e) {
    const auto p = train::epoch_permutation(n, 3, e);
    for (std::size_t pos = 0; pos < n; ++pos) ++count[p[pos]][pos];
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t pos = 0; pos < n; ++pos) {
      INFO("element " << i << " at position " << pos);
      CHECK(count[i][pos] > 680);
      CHECK(count[i][pos] < 920);
    }
}

TEST_CASE("shuffled_batches: each epoch covers the data once, the last batch is short", "[train][batching]") {
  train::shuffled_batches b(10, 4, 11);
  CHECK(b.batches_per_epoch() == 3);
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::size_t> seen;
    std::vector<std::size_t> sizes;
    for (int k = 0; k < 3; ++k) {
      const auto idx = b.next();
      CHECK(b.epoch() == epoch);
      sizes.push_back(idx.size());
      seen.insert(seen.end(), idx.begin(), idx.end());
      CHECK(b.epoch_finished() == (k == 2));
    }
    CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
    CHECK(seen == train::epoch_permutation(10, 11, epoch));
  }
}

TEST_CASE("shuffled_batches: drop_last skips the short batch; batch larger than the data is the data",
          "[train][batching]") {
  train::shuffled_batches b(10, 4, 11, /*drop_last=*/true);
  CHECK(b.batches_per_epoch() == 2);
  CHECK(b.next().size() == 4);
  CHECK(b.next().size() == 4);
  CHECK(b.epoch_finished());
  CHECK(b.next().size() == 4);
  CHECK(b.epoch() == 1);

  train::shuffled_batches all(3, 100, 1);
  CHECK(all.next().size() == 3);
  CHECK(all.epoch_finished());
  REQUIRE_THROWS_AS(train::shuffled_batches(0, 4, 1), config_error);
  REQUIRE_THROWS_AS(train::shuffled_batches(4, 0, 1), config_error);
}

TEST_CASE("shuffled_batches: restore(epoch, position) continues the same sequence", "[train][batching]") {
  train::shuffled_batches a(13, 5, 21);
  for (int k = 0; k < 7; ++k) a.next();
  train::shuffled_batches b(13, 5, 21);
  b.restore(a.epoch(), a.position());
  for (int k = 0; k < 10; ++k) {
    const auto x = a.next();
    const auto y = b.next();
    REQUIRE(std::vector<std::size_t>(x.begin(), x.end()) == std::vector<std::size_t>(y.begin(), y.end()));
  }
}

TEST_CASE("gather_rows copies the chosen rows in order", "[train][batching]") {
  const std::vector<float> src{0, 1, 2, 10, 11, 12, 20, 21, 22};  // [3, 3]
  tensor<float, cpu> dst({2, 3});
  std::vector<float> staging;
  const std::vector<std::size_t> idx{2, 0};
  train::gather_rows(cpu{}, std::span<const float>(src), 3, std::span<const std::size_t>(idx), dst, staging);
  CHECK(std::vector<float>(dst.data(), dst.data() + 6) == std::vector<float>{20, 21, 22, 0, 1, 2});
}
