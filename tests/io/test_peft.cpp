#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <ratio>
#include <string>
#include <csignal>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/io/peft_inspect.hpp"
#include "cpdiff/nn/lora_linear.hpp"
#include "support/file_size_limit.hpp"
#include "support/fixtures.hpp"

using namespace cpdiff;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cpdiff_test_peft_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

lora::adapter random_adapter(std::size_t r, double alpha, bool rslora, std::uint64_t seed) {
  lora::adapter a;
  a.rank = r;
  a.alpha = alpha;
  a.use_rslora = rslora;
  a.dropout = 0.05;
  const std::pair<const char*, std::pair<std::size_t, std::size_t>> mods[] = {
      {"model.layers.0.self_attn.q_proj", {8, 8}},
      {"model.layers.0.self_attn.v_proj", {8, 8}},
      {"model.layers.1.mlp.up_proj", {8, 12}},
  };
  std::uint64_t i = 0;
  for (const auto& [name, io] : mods) {
    lora::lora_weights w{r, io.first, io.second, std::vector<float>(r * io.first), std::vector<float>(io.second * r)};
    for (auto& v : w.a) v = philox_normal(seed, 0, i++);
    for (auto& v : w.b) v = philox_normal(seed, 1, i++) * 1e-3f;
    a.add(name, std::move(w));
    a.add_target(name);
  }
  return a;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(io::read_file_text(p)); }
void write_text(const fs::path& p, const std::string& s) { io::write_file_atomic(p, s); }

}  // namespace

TEST_CASE("peft: save then load is exact", "[lora][peft]") {
  temp_dir t;
  SECTION("integer alpha") {
    const auto a = random_adapter(4, 16, false, 1);
    lora::save_peft(t.path, a, "meta-llama/Llama-2-7b-hf");
    CHECK(lora::load_peft(t.path) == a);
    CHECK(lora::read_peft_config(t.path).base_model_name_or_path == "meta-llama/Llama-2-7b-hf");
  }
  SECTION("fractional alpha, rsLoRA, no base model name") {
    const auto a = random_adapter(2, 2.5, true, 2);
    lora::save_peft(t.path / "nested" / "folder", a, "");
    CHECK(lora::load_peft(t.path / "nested" / "folder") == a);
    CHECK(read_json(t.path / "nested" / "folder" / "adapter_config.json")["base_model_name_or_path"].is_null());
  }
  // Saving over an existing adapter replaces it.
  const auto b = random_adapter(1, 8, false, 3);
  lora::save_peft(t.path, b, "x");
  CHECK(lora::load_peft(t.path) == b);
  for (const auto& e : fs::directory_iterator(t.path))  // no temporary files left behind
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("peft: save over a folder replaces the pair as one and keeps the folder's other files", "[lora][peft]") {
  temp_dir t;
  const auto a = random_adapter(1, 8, false, 21);
  const auto b = random_adapter(1, 16, false, 22);
  // A base model name long enough that adapter_config.json is larger than adapter_model.safetensors.
  const std::string name(4096, 'm');
  lora::save_peft(t.path, a, name);
  // What a Trainer checkpoint folder holds beside the adapter.
  write_text(t.path / "README.md", "# my adapter\n");
  write_text(t.path / "training_args.bin", std::string(1000, 'x'));
  fs::create_directory(t.path / "runs");
  write_text(t.path / "runs" / "events.txt", "step 1\n");
  fs::create_symlink("README.md", t.path / "latest");
  auto inode = [](const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
  };
  const auto args_inode = inode(t.path / "training_args.bin");
  auto siblings = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(t.path.parent_path()))
      if (e.path().filename().string().rfind(t.path.filename().string() + ".", 0) == 0) out.push_back(e.path().string());
    return out;
  };
  auto others_kept = [&] {
    CHECK(io::read_file_text(t.path / "README.md") == "# my adapter\n");
    CHECK(inode(t.path / "training_args.bin") == args_inode);  // linked, not copied
    CHECK(io::read_file_text(t.path / "runs" / "events.txt") == "step 1\n");
    CHECK(fs::read_symlink(t.path / "latest") == "README.md");
  };
  SECTION("a save replaces the pair and keeps every other entry") {
    lora::save_peft(t.path, b, name);
    CHECK(lora::load_peft(t.path) == b);
    others_kept();
    CHECK(siblings().empty());
    // Saved through a symbolic link to the folder: the folder is updated, the link stays a link.
    const fs::path link = t.path.string() + "_link";
    fs::create_directory_symlink(t.path, link);
    lora::save_peft(link, a, name);
    CHECK(fs::is_symlink(link));
    CHECK(lora::load_peft(t.path) == a);
    others_kept();
    fs::remove(link);
  }
  SECTION("a save that fails part way leaves the old pair, and no temporary folder") {
    // The size limit lets adapter_model.safetensors through but not adapter_config.json, written second: saving
    // the two files one after the other in place would leave b's weights under a's configuration.
    const temp_dir scratch;
    lora::save_peft(scratch.path, b, name);
    const auto weights_size = fs::file_size(scratch.path / lora::peft_weights_file);
    REQUIRE(fs::file_size(scratch.path / lora::peft_config_file) > weights_size + 8);
    const bool threw =
        testing::throws_io_error_past_file_size(weights_size + 8, [&] { lora::save_peft(t.path, b, name); });
    CHECK(threw);
    CHECK(lora::load_peft(t.path) == a);
    others_kept();
    CHECK(siblings().empty());
  }
  SECTION("a process killed at any moment of a save leaves a or b whole, and its leftovers are found") {
    std::mt19937 rng(7);
    int killed_mid_run = 0;
    for (int round = 0; round < 24; ++round) {
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        try {
          for (int i = 0;; ++i) lora::save_peft(t.path, i % 2 ? b : a, name);  // until killed
        } catch (...) {
          ::_exit(3);
        }
      }
      ::usleep(std::uniform_int_distribution<unsigned>(500, 20000)(rng));
      ::kill(child, SIGKILL);
      int status = 0;
      ::waitpid(child, &status, 0);
      killed_mid_run += WIFSIGNALED(status);
      const auto got = lora::load_peft(t.path);
      CHECK((got == a || got == b));
      others_kept();
      io::remove_orphan_temp_files(t.path);
      CHECK(siblings().empty());
    }
    CHECK(killed_mid_run == 24);
  }
}

TEST_CASE("peft: the files follow PEFT's layout", "[lora][peft]") {
  temp_dir t;
  const auto a = random_adapter(4, 16, false, 4);
  lora::save_peft(t.path, a, "roberta-base");
  const auto c = read_json(t.path / "adapter_config.json");
  CHECK(c["peft_type"] == "LORA");
  CHECK(c["r"] == 4);
  CHECK(c["lora_alpha"].is_number_integer());
  CHECK(c["lora_alpha"] == 16);
  CHECK(c["lora_dropout"] == Approx(0.05));
  CHECK(c["bias"] == "none");
  CHECK(c["fan_in_fan_out"] == false);
  CHECK(c["use_rslora"] == false);
  CHECK(c["base_model_name_or_path"] == "roberta-base");
  CHECK(c["target_modules"] == nlohmann::json({"q_proj", "up_proj", "v_proj"}));
  CHECK(c.contains("task_type"));

  const auto st = io::load_safetensors(t.path / "adapter_model.safetensors");
  CHECK(st.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(st.size() == 6);
  const auto& ea = st.at("base_model.model.model.layers.1.mlp.up_proj.lora_A.weight");
  const auto& eb = st.at("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
  CHECK(ea.dtype == io::st_dtype::F32);
  CHECK(ea.shape == std::vector<std::size_t>{4, 8});
  CHECK(eb.shape == std::vector<std::size_t>{12, 4});
  CHECK(st.to_f32(eb.name) == a.at("model.layers.1.mlp.up_proj").b);
}

TEST_CASE("peft: reads a hand-written PEFT folder", "[lora][peft]") {
  const std::string d = testing::fixtures_dir() + "/lora/peft_handmade";
  INFO("fixture " << d << " (regenerate: /usr/bin/python3 tests/fixtures/make_lora_fixtures.py)");
  const auto a = lora::load_peft(d);
  CHECK(a.rank == 2);
  CHECK(a.alpha == 16);
  CHECK(a.dropout == 0.1);
  CHECK_FALSE(a.use_rslora);
  CHECK(a.target_modules == std::vector<std::string>{"value", "query"});
  REQUIRE(a.size() == 4);
  for (const auto& [module, w] : a.modules) {
    INFO(module);
    const auto ea = io::load_npy<double>(d + "/expected/" + module + ".A.npy");
    const auto eb = io::load_npy<double>(d + "/expected/" + module + ".B.npy");
    CHECK(w.a_shape() == shape::from_range(ea.shape.begin(), ea.shape.end()));
    CHECK(w.b_shape() == shape::from_range(eb.shape.begin(), eb.shape.end()));
    CHECK(std::vector<double>(w.a.begin(), w.a.end()) == ea.data);
    CHECK(std::vector<double>(w.b.begin(), w.b.end()) == eb.data);
  }
  // ...and into layers of the matching architecture.
  parameter_store<float, cpu> ps;
  rng g{1};
  nn::lora_linear<6, 6, 2, std::ratio<16>> q(ps, "roberta.encoder.layer.1.attention.self.query", g);
  lora::load_into(q, a);
  CHECK(q.lora_B()(5, 1) == a.at(q.name()).b[11]);
}

TEST_CASE("peft: layers -> folder -> layers computes the same", "[lora][peft]") {
  temp_dir t;
  using L = nn::lora_linear<8, 5, 2, std::ratio<4>>;
  parameter_store<float, cpu> ps1, ps2;
  rng g1{1}, g2{1};  // same seed: same base weights; the LoRA weights come from the file
  L a1(ps1, "blocks.0.attn", g1), b1(ps1, "blocks.1.attn", g1);
  L a2(ps2, "blocks.0.attn", g2), b2(ps2, "blocks.1.attn", g2);
  ops::fill_normal(cpu{}, a1.lora_B(), 0.0f, 1.0f, 7, 0);
  ops::fill_normal(cpu{}, b1.lora_B(), 0.0f, 1.0f, 7, 1);
  lora::adapter ad;
  lora::extract(ad, a1, b1);
  lora::save_peft(t.path, ad, "base");
  lora::load_all(lora::load_peft(t.path), a2, b2);
  tensor<float, cpu> x({3, 8});
  ops::fill_normal(cpu{}, x.view(), 0.0f, 1.0f, 7, 2);
  CHECK(ops::to_host(cpu{}, a2.forward(x.cview())) == ops::to_host(cpu{}, a1.forward(x.cview())));
  CHECK(ops::to_host(cpu{}, b2.forward(x.cview())) == ops::to_host(cpu{}, b1.forward(x.cview())));
}

TEST_CASE("peft: broken folders are io_errors / shape_errors naming the file and key", "[lora][peft]") {
  temp_dir t;
  const auto a = random_adapter(2, 8, false, 5);
  lora::save_peft(t.path, a, "base");
  const fs::path cfg = t.path / "adapter_config.json", st = t.path / "adapter_model.safetensors";
  auto config = read_json(cfg);
  const std::string q = "base_model.model.model.layers.0.self_attn.q_proj";

  SECTION("missing folder") {
    REQUIRE_THROWS_AS(lora::load_peft(t.path / "nope"), io_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path / "nope"), Catch::Contains((t.path / "nope").string()));
  }
  SECTION("missing files") {
    fs::remove(st);
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("adapter_model.safetensors"));
    fs::remove(cfg);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("adapter_config.json': missing"));
  }
  SECTION("corrupt config json") {
    write_text(cfg, "{\"peft_type\": \"LORA\", \"r\": 2,");
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(cfg.string()) && Catch::Contains("JSON"));
    write_text(cfg, "[1, 2]");
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
  }
  SECTION("config is not LORA") {
    config["peft_type"] = "PREFIX_TUNING";
    write_text(cfg, config.dump());
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("PREFIX_TUNING") && Catch::Contains(cfg.string()));
    config.erase("peft_type");
    write_text(cfg, config.dump());
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
  }
  SECTION("bad or unsupported config fields") {
    for (auto [k, v] : std::vector<std::pair<std::string, nlohmann::json>>{{"r", 0},
                                                                            {"r", 2.5},
                                                                            {"lora_alpha", "big"},
                                                                            {"use_rslora", "yes"},
                                                                            {"target_modules", 3},
                                                                            {"fan_in_fan_out", true},
                                                                            {"bias", "all"},
                                                                            {"rank_pattern", {{"q_proj", 4}}},
                                                                            {"use_dora", true}}) {
      auto c = config;
      c[k] = v;
      write_text(cfg, c.dump());
      INFO(k << " = " << v.dump());
      REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
      REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("'" + k + "'"));
    }
  }
  SECTION("r in the config differs from the tensors") {
    config["r"] = 3;
    write_text(cfg, config.dump());
    REQUIRE_THROWS_AS(lora::load_peft(t.path), shape_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(st.string()) && Catch::Contains(".lora_A.weight") &&
                                                     Catch::Contains("[2, 8]") && Catch::Contains("r = 3"));
  }
  SECTION("incomplete pair") {
    io::safetensors_writer w;
    w.add(q + ".lora_A.weight", std::vector<std::size_t>{2, 8}, std::vector<float>(16));
    w.save(st);
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(q + ".lora_B.weight") && Catch::Contains(st.string()));
  }
  SECTION("B inconsistent with r") {
    io::safetensors_writer w;
    w.add(q + ".lora_A.weight", std::vector<std::size_t>{2, 8}, std::vector<float>(16));
    w.add(q + ".lora_B.weight", std::vector<std::size_t>{8, 3}, std::vector<float>(24));
    w.save(st);
    REQUIRE_THROWS_AS(lora::load_peft(t.path), shape_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(q + ".lora_B.weight") && Catch::Contains("[8, 3]"));
  }
  SECTION("rank-1 tensor, foreign key, integer dtype, empty file") {
    io::safetensors_writer w1;
    w1.add(q + ".lora_A.weight", std::vector<std::size_t>{16}, std::vector<float>(16));
    w1.add(q + ".lora_B.weight", std::vector<std::size_t>{8, 2}, std::vector<float>(16));
    w1.save(st);
    REQUIRE_THROWS_AS(lora::load_peft(t.path), shape_error);
    io::safetensors_writer w2;
    w2.add("base_model.model.classifier.weight", std::vector<std::size_t>{2, 8}, std::vector<float>(16));
    w2.save(st);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("classifier.weight"));
    io::safetensors_writer w3;
    w3.add(q + ".lora_A.weight", std::vector<std::size_t>{2, 8}, std::vector<std::int32_t>(16));
    w3.save(st);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("I32"));
    io::safetensors_writer w4;
    w4.save(st);
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
  }
  SECTION("saving an empty adapter") {
    REQUIRE_THROWS_AS(lora::save_peft(t.path / "empty", lora::adapter{}, "x"), config_error);
  }
}

TEST_CASE("peft: inspect reports the layout, unconverted, and says how two folders differ", "[lora][peft][inspect]") {
  temp_dir t;
  const lora::adapter a = random_adapter(4, 8, false, 7);
  lora::save_peft(t.path / "a", a, "base");
  const lora::peft_summary s = lora::inspect_peft(t.path / "a");
  CHECK(s.config.r == 4);
  CHECK(s.config.lora_alpha == 8);
  CHECK(s.config.base_model_name_or_path == "base");
  CHECK(s.dtypes() == "F32");
  CHECK(s.parameter_count() == a.parameter_count());
  REQUIRE(s.modules.size() == 3);
  CHECK(s.modules.at("model.layers.1.mlp.up_proj").a_shape == shape{4, 8});
  CHECK(s.modules.at("model.layers.1.mlp.up_proj").b_shape == shape{12, 4});
  // The fixtures: the same layout in F32 and F16 is shared; the dtype is reported as stored.
  const fs::path fx = fs::path(testing::fixtures_dir()) / "lora";
  const lora::peft_summary f32 = lora::inspect_peft(fx / "peft_handmade");
  const lora::peft_summary f16 = lora::inspect_peft(fx / "peft_handmade_f16");
  CHECK(f16.dtypes() == "F16");
  CHECK(lora::peft_layout_difference(f32, f16).empty());
  CHECK_THAT(lora::peft_layout_difference(f32, lora::inspect_peft(fx / "peft_handmade_r4")),
             Catch::Contains("has r = 4") && Catch::Contains("peft_handmade' r = 2"));

  SECTION("a module missing on either side") {
    lora::adapter fewer = a;
    fewer.modules.erase("model.layers.0.self_attn.v_proj");
    fewer.target_modules = {"q_proj", "up_proj"};  // load_peft refuses a target that matches no module
    lora::save_peft(t.path / "fewer", fewer, "base");
    const auto f = lora::inspect_peft(t.path / "fewer");
    CHECK_THAT(lora::peft_layout_difference(s, f),
               Catch::Contains("fewer' has no module 'model.layers.0.self_attn.v_proj'"));
    CHECK_THAT(lora::peft_layout_difference(f, s), Catch::Contains("has module 'model.layers.0.self_attn.v_proj'"));
  }
  SECTION("a shape") {
    lora::adapter wider = a;
    lora::lora_weights& w = wider.modules.at("model.layers.1.mlp.up_proj");
    w.out_features = 16;
    w.b.assign(16 * 4, 0.5f);
    lora::save_peft(t.path / "wider", wider, "base");
    CHECK_THAT(lora::peft_layout_difference(s, lora::inspect_peft(t.path / "wider")),
               Catch::Contains("module 'model.layers.1.mlp.up_proj'") && Catch::Contains("lora_B [16, 4]") &&
                   Catch::Contains("lora_B [12, 4]"));
  }
  SECTION("a folder that load_peft refuses is refused the same way") {
    REQUIRE_THROWS_AS(lora::inspect_peft(t.path / "missing"), io_error);
  }
}

TEST_CASE("peft: NaN or infinite weights are refused unless asked for, naming the file, tensor and element",
          "[lora][peft]") {
  temp_dir t;
  auto a = random_adapter(2, 8, false, 12);
  auto& w = a.modules.begin()->second;
  const std::string module = a.modules.begin()->first;
  w.b[3] = std::numeric_limits<float>::quiet_NaN();
  lora::save_peft(t.path, a, "base");
  const std::string file = (t.path / "adapter_model.safetensors").string();
  REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
  REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(file) &&
                                                   Catch::Contains("'" + lora::peft_key(module, 'B') + "' holds nan at element 3"));
  const auto loaded = lora::load_peft(t.path, {.allow_non_finite = true});
  CHECK(std::isnan(loaded.modules.at(module).b[3]));
  w.b[3] = 1.f;
  w.a[0] = -std::numeric_limits<float>::infinity();
  lora::save_peft(t.path, a, "base");
  REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("holds -inf at element 0"));
}

TEST_CASE("peft: lora_alpha <= 0, target_modules that miss the weights and deep JSON are refused",
          "[lora][peft]") {
  temp_dir t;
  lora::save_peft(t.path, random_adapter(2, 8, false, 11), "base");  // modules q_proj, v_proj, up_proj
  const fs::path cfg = t.path / "adapter_config.json";
  const auto config = read_json(cfg);
  auto refused = [&](const nlohmann::json& c, const std::string& needle) {
    write_text(cfg, c.dump());
    INFO(c.dump());
    REQUIRE_THROWS_AS(lora::load_peft(t.path), io_error);
    REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains(cfg.string()) && Catch::Contains(needle));
    REQUIRE_THROWS_WITH(lora::inspect_peft(t.path), Catch::Contains(needle));
  };
  auto with = [&](const char* k, nlohmann::json v) {
    auto c = config;
    c[k] = std::move(v);
    return c;
  };
  refused(with("lora_alpha", 0), "'lora_alpha' is 0");
  refused(with("lora_alpha", -16), "'lora_alpha' is -16");
  refused(with("target_modules", {"q_proj", "v_proj"}), "does not name module 'model.layers.1.mlp.up_proj'");
  refused(with("target_modules", {"q_proj", "v_proj", "up_proj", "k_proj"}), "names 'k_proj'");
  // PEFT's suffix match and its single-string regular expression are accepted.
  write_text(cfg, with("target_modules", {"self_attn.q_proj", "v_proj", "mlp.up_proj"}).dump());
  CHECK(lora::load_peft(t.path).modules.size() == 3);
  write_text(cfg, with("target_modules", ".*(q|v|up)_proj").dump());
  CHECK(lora::load_peft(t.path).modules.size() == 3);
  // Deep nesting is refused while parsing; a long value is quoted as a short excerpt.
  const std::size_t depth = 100000;
  write_text(cfg, R"({"peft_type": "LORA", "bias": )" + std::string(depth, '[') + std::string(depth, ']') + "}");
  REQUIRE_THROWS_WITH(lora::load_peft(t.path), Catch::Contains("nested deeper than 64 levels"));
  write_text(cfg, with("bias", std::string(10000, 'x')).dump());
  try {
    lora::load_peft(t.path);
    FAIL("accepted bias = \"xxx...\"");
  } catch (const io_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("'bias' is \"xxx") && Catch::Contains("..."));
    CHECK(std::string(e.what()).size() < 400);
  }
}
