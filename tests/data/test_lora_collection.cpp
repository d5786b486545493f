// Tests for cpdiff/data/lora_layout.hpp and lora_collection.hpp: flatten / unflatten, z-scores, folders.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/core/rng.hpp"
#include "cpdiff/data/lora_collection.hpp"
#include "cpdiff/pipeline/training_set.hpp"
#include "cpdiff/io/npy.hpp"
#include "support/file_size_limit.hpp"

using namespace cpdiff;
namespace fs = std::filesystem;

namespace {

// Module m with A [r, in] and B [out, r] filled from Philox (seed, stream).
lora::lora_weights random_module(std::size_t r, std::size_t in, std::size_t out, std::uint64_t seed) {
  lora::lora_weights w{r, in, out, std::vector<float>(r * in), std::vector<float>(out * r)};
  for (std::size_t i = 0; i < w.a.size(); ++i) w.a[i] = philox_normal(seed, 0, i);
  for (std::size_t i = 0; i < w.b.size(); ++i) w.b[i] = philox_normal(seed, 1, i);
  return w;
}

// Modules inserted out of name order, with a name that sorts between the others' tensors.
lora::adapter sample_adapter(std::uint64_t seed) {
  lora::adapter a;
  a.rank = 2;
  a.alpha = 8;
  a.dropout = 0.1;
  a.add("fc2", random_module(2, 3, 4, seed + 1));
  a.add("enc.fc10", random_module(2, 5, 2, seed + 2));
  a.add("fc1", random_module(2, 6, 3, seed + 3));
  for (const auto& [k, w] : a.modules) a.add_target(k);
  return a;
}

fs::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const fs::path p = fs::temp_directory_path() /
                     ("cpdiff_lora_collection_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(p);
  return p;
}

struct dir_guard {
  fs::path p;
  ~dir_guard() { fs::remove_all(p); }
};

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}
std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A collection with conditions "a" (K = 5) and "b" (K = 3), features of length 2.
data::lora_collection sample_collection() {
  data::lora_collection c(data::lora_layout(sample_adapter(0)));
  const std::size_t a = c.add_condition("a", {0.5f, 1.0f});
  const std::size_t b = c.add_condition("b", {-1.0f, 2.0f});
  for (std::uint64_t k = 0; k < 5; ++k) c.append(a, sample_adapter(10 + k));
  for (std::uint64_t k = 0; k < 3; ++k) c.append(b, sample_adapter(20 + k));
  return c;
}

}  // namespace

TEST_CASE("lora_layout: tensors sorted by name, offsets and shapes recorded", "[data][lora_collection]") {
  const lora::adapter a = sample_adapter(1);
  const data::lora_layout l(a);
  const std::vector<std::string> names{"enc.fc10.lora_A.weight", "enc.fc10.lora_B.weight", "fc1.lora_A.weight",
                                       "fc1.lora_B.weight", "fc2.lora_A.weight", "fc2.lora_B.weight"};
  const std::vector<std::size_t> offsets{0, 10, 14, 26, 32, 38};
  REQUIRE(l.slots().size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(l.slots()[i].name == names[i]);
    CHECK(l.slots()[i].offset == offsets[i]);
  }
  CHECK(l.slots()[1].shape == shape{2, 2});
  CHECK(l.slots()[2].shape == shape{2, 6});
  CHECK(l.size() == 46);
  // The flat vector is the concatenation in that order, element for element.
  const std::vector<float> v = l.flatten(a);
  CHECK(v[0] == a.at("enc.fc10").a[0]);
  CHECK(v[14 + 7] == a.at("fc1").a[7]);
  CHECK(v[45] == a.at("fc2").b[7]);
}

TEST_CASE("lora_layout: flatten / unflatten is an exact round trip", "[data][lora_collection]") {
  const lora::adapter a = sample_adapter(2);
  const data::lora_layout l(a);
  const lora::adapter back = l.unflatten(l.flatten(a));
  CHECK(back == a);  // every value, shape, rank, alpha, dropout and target name
  // A vector of the wrong length, or an adapter of another shape, is a shape_error.
  REQUIRE_THROWS_AS(l.unflatten(std::vector<float>(45)), shape_error);
  lora::adapter other = a;
  other.add("fc1", random_module(2, 7, 3, 9));
  REQUIRE_THROWS_AS(l.flatten(other), shape_error);
  REQUIRE_THROWS_WITH(l.flatten(other), Catch::Contains("fc1.lora_A.weight"));
  lora::adapter scaled = a;
  scaled.alpha = 16;
  REQUIRE_THROWS_AS(l.flatten(scaled), config_error);
}

TEST_CASE("lora_collection: pooled statistics are those of every checkpoint together", "[data][lora_collection]") {
  data::lora_collection c = sample_collection();
  REQUIRE(c.condition_count() >= 2);
  const std::size_t N = c.dim();
  std::vector<float> all;
  std::size_t total = 0;
  for (std::size_t i = 0; i < c.condition_count(); ++i) {
    const auto v = c.checkpoints(i);
    all.insert(all.end(), v.begin(), v.end());
    total += c.checkpoint_count(i);
  }
  const data::zscore_stats p = c.pooled_statistics();  // a copy: c changes below
  REQUIRE(p.dim() == N);
  // coordinate 2 by hand: mean and population std over every checkpoint of every condition
  double m = 0, var = 0;
  for (std::size_t k = 0; k < total; ++k) m += all[k * N + 2];
  m /= double(total);
  for (std::size_t k = 0; k < total; ++k) var += (all[k * N + 2] - m) * (all[k * N + 2] - m);
  CHECK(p.mean[2] == Approx(m).margin(1e-12));
  CHECK(p.std[2] == Approx(std::sqrt(var / double(total))).margin(1e-12));
  // not one condition's statistics
  CHECK(p.mean != c.statistics(0).mean);
  // one normalisation for all: the round trip holds for any condition's vectors
  const auto v1 = c.checkpoints(1);
  const std::vector<float> v(v1.begin(), v1.end());
  const auto back = p.denormalise(p.normalise(v));
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(back[i] == Approx(v[i]).margin(1e-5));
  // cached, and recomputed when data change
  CHECK(&c.pooled_statistics() == &c.pooled_statistics());
  const std::vector<double> before = c.pooled_statistics().mean;
  c.append(0, std::vector<float>(N, 100.0f));
  CHECK(c.pooled_statistics().mean[2] > before[2]);
  data::lora_collection empty(c.layout());
  REQUIRE_THROWS_AS(empty.pooled_statistics(), config_error);
  REQUIRE_THROWS_AS(data::zscore_stats::fit(std::vector<float>(N + 1), N), shape_error);
}

TEST_CASE("lora_collection: z-score statistics, round trip and constant coordinates", "[data][lora_collection]") {
  data::lora_collection c = sample_collection();
  const std::size_t N = c.dim();
  // Make coordinate 3 constant in condition "a" (all K vectors equal there).
  data::lora_collection d(c.layout());
  const std::size_t a = d.add_condition("a");
  std::vector<float> rows;
  for (std::size_t k = 0; k < 4; ++k) {
    std::vector<float> v(c.checkpoint(0, k).begin(), c.checkpoint(0, k).end());
    v[3] = 0.125f;
    d.append(a, v);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  const data::zscore_stats& s = d.statistics(a);
  // Independent reference for coordinate 5: mean and population std of the four values.
  double m = 0, var = 0;
  for (std::size_t k = 0; k < 4; ++k) m += rows[k * N + 5];
  m /= 4;
  for (std::size_t k = 0; k < 4; ++k) var += (rows[k * N + 5] - m) * (rows[k * N + 5] - m);
  CHECK(s.mean[5] == Approx(m).margin(1e-12));
  CHECK(s.std[5] == Approx(std::sqrt(var / 4)).margin(1e-12));
  CHECK(s.mean[3] == 0.125);
  CHECK(s.std[3] == d.std_floor());

  const std::vector<float> z = d.normalise(rows, a);  // all four rows at once
  for (float v : z) REQUIRE(std::isfinite(v));
  for (std::size_t k = 0; k < 4; ++k) CHECK(z[k * N + 3] == 0.0f);
  // Normalised coordinates have mean 0 and std 1 over the condition's K vectors (non-constant ones).
  double zm = 0, zv = 0;
  for (std::size_t k = 0; k < 4; ++k) zm += z[k * N + 5];
  for (std::size_t k = 0; k < 4; ++k) zv += (z[k * N + 5] - zm / 4) * (z[k * N + 5] - zm / 4);
  CHECK(zm / 4 == Approx(0).margin(1e-6));
  CHECK(zv / 4 == Approx(1).margin(1e-5));
  // Round trip.
  const std::vector<float> back = d.denormalise(z, a);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double tol = 1e-6 * std::max(1.0, std::abs(double(rows[i])));
    REQUIRE(std::abs(back[i] - rows[i]) <= tol);
  }
  CHECK(back[3] == 0.125f);
  // A generated value on a constant coordinate comes back at the mean (within |z| * floor).
  std::vector<float> gen(N, 1.5f);
  CHECK(std::abs(d.denormalise(gen, a)[3] - 0.125f) < 1e-6f);
  // Statistics follow new data.
  d.append(a, std::vector<float>(N, 0.125f));
  CHECK(d.statistics(a).std[3] == d.std_floor());
  CHECK(d.statistics(a).mean[5] != Approx(m).margin(1e-9));
  // Bad uses.
  REQUIRE_THROWS_AS(d.normalise(std::vector<float>(N + 1), a), shape_error);
  const std::size_t e = d.add_condition("empty");
  REQUIRE_THROWS_AS(d.statistics(e), config_error);
  REQUIRE_THROWS_AS(d.add_condition("a"), config_error);
  REQUIRE_THROWS_AS(d.append(a, std::vector<float>(N - 1)), shape_error);
  REQUIRE_THROWS_AS(d.add_condition("f", {1.0f}), shape_error);  // the collection has 0 features
  REQUIRE_THROWS_AS(data::lora_collection(c.layout(), 0.0), config_error);
}

TEST_CASE("lora_collection: conditions are separate; appender and adapters", "[data][lora_collection]") {
  data::lora_collection c = sample_collection();
  CHECK(c.condition_count() == 2);
  CHECK(c.checkpoint_count(0) == 5);
  CHECK(c.checkpoint_count(1) == 3);
  CHECK(c.total_checkpoints() == 8);
  CHECK(c.find("b") == 1);
  CHECK(c.feature_dim() == 2);
  CHECK(c.features(1)[0] == -1.0f);
  CHECK(c.adapter(1, 2) == sample_adapter(22));
  CHECK(c.statistics(0).mean != c.statistics(1).mean);
  auto hook = c.appender(1);
  hook(7, sample_adapter(99));
  CHECK(c.checkpoint_count(1) == 4);
  CHECK(c.adapter(1, 3) == sample_adapter(99));
  REQUIRE_THROWS_AS(c.checkpoint(1, 4), config_error);
  REQUIRE_THROWS_AS(c.find("zzz"), config_error);
}

TEST_CASE("lora_collection: save / load round trip", "[data][lora_collection]") {
  const dir_guard g{temp_dir("roundtrip")};
  const data::lora_collection c = sample_collection();
  c.save(g.p);
  CHECK(fs::exists(g.p / "index.json"));
  CHECK(fs::exists(g.p / "condition_00000.npy"));
  CHECK(fs::exists(g.p / "features.npy"));
  const auto raw = io::load_npy<float>(g.p / "condition_00001.npy");
  CHECK(raw.shape == std::vector<std::size_t>{3, c.dim()});

  const data::lora_collection d = data::lora_collection::load(g.p);
  CHECK(d.layout() == c.layout());
  CHECK(d.std_floor() == c.std_floor());
  REQUIRE(d.condition_count() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(d.name(i) == c.name(i));
    CHECK(std::vector<float>(d.checkpoints(i).begin(), d.checkpoints(i).end()) ==
          std::vector<float>(c.checkpoints(i).begin(), c.checkpoints(i).end()));
    CHECK(std::vector<float>(d.features(i).begin(), d.features(i).end()) ==
          std::vector<float>(c.features(i).begin(), c.features(i).end()));
    CHECK(d.statistics(i).mean == c.statistics(i).mean);  // recomputed bit for bit
    CHECK(d.statistics(i).std == c.statistics(i).std);
  }
  CHECK(d.adapter(0, 4) == sample_adapter(14));

  // No features, one empty condition.
  const dir_guard g2{temp_dir("nofeat")};
  data::lora_collection e(c.layout(), 1e-6);
  e.add_condition("only");
  e.save(g2.p);
  const auto f = data::lora_collection::load(g2.p);
  CHECK(f.condition_count() == 1);
  CHECK(f.checkpoint_count(0) == 0);
  CHECK(f.std_floor() == 1e-6);
  CHECK_FALSE(fs::exists(g2.p / "features.npy"));
}

TEST_CASE("lora_collection: a corrupt, truncated or inconsistent folder is an io_error naming the file",
          "[data][lora_collection]") {
  const dir_guard g{temp_dir("corrupt")};
  const data::lora_collection c = sample_collection();
  const fs::path index = g.p / "index.json", cond1 = g.p / "condition_00001.npy";
  auto fresh = [&] {
    fs::remove_all(g.p);
    c.save(g.p);
  };
  auto fails_naming = [&](const fs::path& file) {
    REQUIRE_THROWS_AS(data::lora_collection::load(g.p), io_error);
    REQUIRE_THROWS_WITH(data::lora_collection::load(g.p), Catch::Contains(file.filename().string()));
  };

  SECTION("not a folder") {
    REQUIRE_THROWS_AS(data::lora_collection::load(g.p / "nope"), io_error);
  }
  SECTION("missing index") {
    fresh();
    fs::remove(index);
    fails_naming(index);
  }
  SECTION("index is not JSON") {
    fresh();
    write_text(index, "{\"format\": ");
    fails_naming(index);
  }
  SECTION("index with a wrong field type") {
    fresh();
    std::string s = read_text(index);
    s.replace(s.find("\"dim\""), 5, "\"dimx\"");
    write_text(index, s);
    fails_naming(index);
    REQUIRE_THROWS_WITH(data::lora_collection::load(g.p), Catch::Contains("'dim'"));
  }
  SECTION("index whose dim disagrees with the tensors") {
    fresh();
    std::string s = read_text(index);
    const auto at = s.find("\"dim\": ") + 7;
    s.replace(at, s.find(',', at) - at, "50");
    write_text(index, s);
    fails_naming(index);
  }
  SECTION("missing condition file") {
    fresh();
    fs::remove(cond1);
    fails_naming(cond1);
  }
  SECTION("truncated condition file") {
    fresh();
    const std::string s = read_text(cond1);
    write_text(cond1, s.substr(0, s.size() - 10));
    fails_naming(cond1);
  }
  SECTION("condition file with fewer checkpoints than the index says") {
    fresh();
    io::save_npy<float>(cond1, std::vector<std::size_t>{2, c.dim()}, std::vector<float>(2 * c.dim()));
    fails_naming(cond1);
    REQUIRE_THROWS_WITH(data::lora_collection::load(g.p), Catch::Contains("[3, 46]"));
  }
  SECTION("condition file of another dtype") {
    fresh();
    io::save_npy<double>(cond1, std::vector<std::size_t>{3, c.dim()}, std::vector<double>(3 * c.dim()));
    fails_naming(cond1);
  }
  SECTION("features file missing") {
    fresh();
    fs::remove(g.p / "features.npy");
    fails_naming(g.p / "features.npy");
  }
}

TEST_CASE("lora_collection: crafted shapes in index.json are refused, naming the file and the tensor",
          "[data][lora_collection]") {
  const dir_guard g{temp_dir("shapes")};
  sample_collection().save(g.p);
  const fs::path index = g.p / "index.json";
  const nlohmann::json good = nlohmann::json::parse(read_text(index));
  auto refused = [&](const nlohmann::json& j, const std::string& needle) {
    write_text(index, j.dump(1));
    INFO(needle);
    REQUIRE_THROWS_AS(data::lora_collection::load(g.p), io_error);
    REQUIRE_THROWS_WITH(data::lora_collection::load(g.p), Catch::Contains(index.string()) && Catch::Contains(needle));
  };
  const std::string first = good["tensors"][0]["name"];
  SECTION("negative and fractional shape entries") {
    for (const nlohmann::json& bad : {nlohmann::json(-1), nlohmann::json(1.9)}) {
      nlohmann::json j = good;
      j["tensors"][0]["shape"][1] = bad;
      refused(j, "tensor '" + first + "': shape entry " + bad.dump() + " is not a non-negative integer");
    }
  }
  // One module "m", rank r: lora_A [r, in], lora_B [out, r], no conditions.
  auto one_module = [&](std::size_t r, std::size_t in, std::size_t out, std::size_t b_offset, std::size_t dim) {
    nlohmann::json j = good;
    j["adapter"]["r"] = r;
    j["tensors"] = {{{"name", "m.lora_A.weight"}, {"module", "m"}, {"kind", "A"}, {"shape", {r, in}}, {"offset", 0}},
                    {{"name", "m.lora_B.weight"}, {"module", "m"}, {"kind", "B"}, {"shape", {out, r}},
                     {"offset", b_offset}}};
    j["dim"] = dim;
    j["feature_dim"] = 0;
    j["conditions"] = nlohmann::json::array();
    return j;
  };
  SECTION("a size product that wraps (3 x 6148914691236517206 = 2^64 + 2)") {
    refused(one_module(3, 6148914691236517206ULL, 1, 2, 5),
            "'m.lora_A.weight' of shape [3, 6148914691236517206] overflows");
  }
  SECTION("sizes whose sum wraps to an empty layout") {
    const std::size_t half = std::size_t{1} << 63;
    refused(one_module(1, half, half, half, 0), "overflows");
  }
  SECTION("adapter fields a PEFT config may not hold (found by tests/fuzz)") {
    nlohmann::json j = good;
    j["adapter"]["lora_alpha"] = -5;
    refused(j, "'adapter.lora_alpha' is -5, not a number > 0");
    j = good;
    j["adapter"]["lora_dropout"] = 7.5;
    refused(j, "'adapter.lora_dropout' is 7.5, not a number in [0, 1)");
    j = good;
    j["adapter"]["target_modules"] = {"nothing"};
    refused(j, "'adapter.target_modules' does not name module");
  }
  SECTION("deep nesting is refused while parsing") {
    write_text(index, "{\"format\": \"cpdiff.lora_collection\", \"tensors\": " + std::string(100000, '[') +
                          std::string(100000, ']') + "}");
    REQUIRE_THROWS_WITH(data::lora_collection::load(g.p), Catch::Contains(index.string()) &&
                                                              Catch::Contains("nested deeper than 64 levels"));
  }
}

TEST_CASE("lora_collection: save over a folder replaces the whole set or nothing", "[data][lora_collection]") {
  const dir_guard g{temp_dir("swap")};
  const data::lora_collection a = sample_collection();
  // b: same shapes, other names, values and floor.
  data::lora_collection b(a.layout(), 1e-6);
  const std::size_t b0 = b.add_condition("a2", {1.0f, 2.0f});
  const std::size_t b1 = b.add_condition("b2", {3.0f, 4.0f});
  for (std::uint64_t k = 0; k < 5; ++k) b.append(b0, sample_adapter(30 + k));
  for (std::uint64_t k = 0; k < 3; ++k) b.append(b1, sample_adapter(40 + k));
  auto same = [](const data::lora_collection& x, const data::lora_collection& y) {
    REQUIRE(x.condition_count() == y.condition_count());
    CHECK(x.std_floor() == y.std_floor());
    for (std::size_t c = 0; c < x.condition_count(); ++c) {
      CHECK(x.name(c) == y.name(c));
      CHECK(std::vector<float>(x.checkpoints(c).begin(), x.checkpoints(c).end()) ==
            std::vector<float>(y.checkpoints(c).begin(), y.checkpoints(c).end()));
    }
  };
  auto siblings = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(g.p.parent_path()))
      if (e.path().filename().string().rfind(g.p.filename().string() + ".", 0) == 0) out.push_back(e.path().string());
    return out;
  };
  a.save(g.p);
  SECTION("a save that fails part way leaves the old set, and no temporary folder") {
    // The file size limit lets every .npy file through but not index.json, written last.
    const dir_guard scratch{temp_dir("swap_sizes")};
    b.save(scratch.p);
    std::uintmax_t npy_max = 0;
    for (const auto& e : fs::directory_iterator(scratch.p))
      if (e.path().extension() == ".npy") npy_max = std::max(npy_max, fs::file_size(e.path()));
    REQUIRE(fs::file_size(scratch.p / "index.json") > npy_max + 8);
    const bool threw = testing::throws_io_error_past_file_size(npy_max + 8, [&] { b.save(g.p); });
    CHECK(threw);
    same(data::lora_collection::load(g.p), a);
    CHECK(siblings().empty());
  }
  SECTION("a save with fewer conditions leaves no file of the old set") {
    data::lora_collection one(a.layout());
    one.append(one.add_condition("only"), sample_adapter(50));
    one.save(g.p);
    same(data::lora_collection::load(g.p), one);
    CHECK_FALSE(fs::exists(g.p / "condition_00001.npy"));
    CHECK_FALSE(fs::exists(g.p / "features.npy"));
    b.save(g.p / "");  // a trailing separator names the same folder
    same(data::lora_collection::load(g.p), b);
    CHECK(siblings().empty());
  }
}

TEST_CASE("make_training_set: z-scored vectors condition by condition, each beside its condition's row",
          "[data][lora_collection]") {
  const data::lora_collection c = sample_collection();
  const std::size_t n = c.dim();
  for (const auto how : {pipeline::normalisation::per_condition, pipeline::normalisation::pooled}) {
    const pipeline::training_set s = pipeline::make_training_set(c, how);
    REQUIRE(s.count == 8);
    REQUIRE(s.n == n);
    REQUIRE(s.d == 2);
    REQUIRE(s.vectors_view().shape() == shape{8, n});
    REQUIRE(s.conditions_view().shape() == shape{8, 2});
    for (std::size_t i = 0; i < 8; ++i) {
      const std::size_t cond = i < 5 ? 0 : 1, k = i < 5 ? i : i - 5;
      const data::zscore_stats& st = how == pipeline::normalisation::pooled ? c.pooled_statistics() : c.statistics(cond);
      REQUIRE(&pipeline::normalisation_statistics(c, how, cond) == &st);
      const std::vector<float> want = st.normalise(c.checkpoint(cond, k));
      for (std::size_t j = 0; j < n; ++j) REQUIRE(s.vectors[i * n + j] == want[j]);
      CHECK(s.conditions[i * 2] == c.features(cond)[0]);
      CHECK(s.conditions[i * 2 + 1] == c.features(cond)[1]);
    }
  }
  // per condition, each condition's vectors have mean 0 in every coordinate; pooled, all of them together
  const auto per = pipeline::make_training_set(c, pipeline::normalisation::per_condition);
  const auto pooled = pipeline::make_training_set(c, pipeline::normalisation::pooled);
  for (std::size_t j = 0; j < n; ++j) {
    double per_b = 0, pooled_all = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      if (i >= 5) per_b += per.vectors[i * n + j];
      pooled_all += pooled.vectors[i * n + j];
    }
    REQUIRE(std::abs(per_b) < 1e-5);
    REQUIRE(std::abs(pooled_all) < 1e-5);
  }
}

TEST_CASE("make_training_set: a collection without checkpoints is refused", "[data][lora_collection]") {
  data::lora_collection c(data::lora_layout(sample_adapter(0)));
  c.add_condition("a", {1.0f});
  CHECK_THROWS_WITH(pipeline::make_training_set(c, pipeline::normalisation::pooled),
                    Catch::Contains("pipeline::make_training_set") && Catch::Contains("no checkpoints"));
}
