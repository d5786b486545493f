// pipeline::read_manifest, load_peft_dataset and lora_generator on PEFT checkpoints trained by PyTorch
// (tests/fixtures/peft_collection, made by tests/fixtures/make_peft_collection.py): the manifest's errors, the data
// set, a fit -> save -> load -> generate round trip, and the folder checks on load.
#include <catch2/catch.hpp>

#include <cpdiff/io/peft.hpp>
#include <cpdiff/pipeline/lora_generator.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/io_test_util.hpp"

namespace fs = std::filesystem;
using namespace cpdiff;
using cpdiff_io_test::temp_dir;

namespace {
const fs::path collection = cpdiff_io_test::fixtures_dir() / "peft_collection";

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p) << s;
}

// A manifest in `dir` naming fixture adapters by absolute path.
fs::path manifest_of(const fs::path& dir, const std::string& lines) {
  write_text(dir / "m.jsonl", lines);
  return dir / "m.jsonl";
}

std::string adapter(const std::string& rel) { return (collection / "adapters" / rel).string(); }

// A short fit: enough steps to exercise every stage, not to generate well.
pipeline::generator_config short_config() {
  pipeline::generator_config c;
  c.autoencoder_steps = 60;
  c.diffusion_steps = 80;
  c.ddim_steps = 10;
  c.batch = 8;
  return c;
}
}  // namespace

TEST_CASE("read_manifest resolves paths against its folder and names the line of each error", "[pipeline]") {
  const auto e = pipeline::read_manifest(collection / "manifest.jsonl");
  REQUIRE(e.size() == 12);
  CHECK(e[0].adapter == collection / "adapters/bright/checkpoint-740");
  CHECK(e[0].kind == pipeline::condition_kind::text);
  CHECK(e[0].text == "detect a bright mean of the second feature");
  CHECK(e[0].line == 1);
  const auto v = pipeline::read_manifest(collection / "manifest_vector.jsonl");
  CHECK(v[5].vector == collection / "features/spread.npy");
  const auto im = pipeline::read_manifest(collection / "manifest_images.jsonl");
  CHECK(im[0].kind == pipeline::condition_kind::images);
  CHECK(im[4].images == std::vector<fs::path>{collection / "images/spread/0.png", collection / "images/spread/1.png"});

  temp_dir t;
  const auto bad = [&](const std::string& text, const std::string& message) {
    CHECK_THROWS_WITH(pipeline::read_manifest(manifest_of(t.path(), text)), Catch::Contains(message));
  };
  bad("{\"adapter\": \"a\", \"text\": \"x\"}\n\n{\"adapter\": \"b\", \"text\": \n", "m.jsonl' line 3: not valid JSON");
  bad("{\"adapter\": \"a\"}\n", "line 1: no condition: give \"text\", \"vector\" or \"images\"");
  bad("{\"adapter\": \"a\", \"text\": \"x\", \"vector\": \"v.npy\"}\n",
      "line 1: more than one of \"text\", \"vector\" and \"images\": give one condition");
  bad("{\"text\": \"x\"}\n", "line 1: no \"adapter\"");
  bad("{\"adapter\": \"a\", \"colour\": 1, \"text\": \"x\"}\n", "line 1: unknown field 'colour'");
  bad("{\"adapter\": \"a\", \"images\": []}\n", "line 1: 'images' must be a non-empty list of PNG paths (array given)");
  bad("{\"adapter\": \"a\", \"images\": \"a.png\"}\n", "line 1: 'images' must be a non-empty list of PNG paths (string given)");
  bad("{\"adapter\": \"a\", \"images\": [\"a.png\", 3]}\n", "line 1: 'images' must list non-empty strings (number given)");
  bad("{\"adapter\": \"a\", \"images\": [\"a.png\"]}\n{\"adapter\": \"b\", \"text\": \"x\"}\n",
      "line 2: a \"text\" condition, but line 1 has a \"images\" one");
  bad("{\"adapter\": 3, \"text\": \"x\"}\n", "line 1: 'adapter' must be a non-empty string (number given)");
  bad("{\"adapter\": \"a\", \"text\": \"x\"}\n{\"adapter\": \"b\", \"vector\": \"v.npy\"}\n",
      "line 2: a \"vector\" condition, but line 1 has a \"text\" one");
  bad("\n  \n", "lists no adapters");
  CHECK_THROWS_WITH(pipeline::read_manifest(t.path() / "absent.jsonl"), Catch::Contains("absent.jsonl"));
}

TEST_CASE("load_peft_dataset: one condition per text or vector, the layout and dtype of the adapters", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest.jsonl");
  CHECK(ds.adapters == 12);
  CHECK(ds.collection.condition_count() == 3);
  CHECK(ds.collection.dim() == 256);
  CHECK(ds.collection.checkpoint_count(1) == 4);
  CHECK(ds.collection.feature_dim() == 32);
  CHECK(ds.collection.name(2) == "detect agreement between the first and third features");
  CHECK(ds.dtype == io::st_dtype::F32);
  CHECK(ds.base_model == "cpdiff-fixture-encoder");
  CHECK(ds.collection.layout().target_modules() == std::vector<std::string>{"query", "value"});
  // the flat vector holds the adapter's values exactly
  const auto a = lora::load_peft(collection / "adapters/spread/checkpoint-760");
  CHECK(ds.collection.adapter(1, 1) == a);

  const auto f16 = pipeline::load_peft_dataset(collection / "manifest_f16.jsonl");
  CHECK(f16.dtype == io::st_dtype::F16);
  const auto bf16 = pipeline::load_peft_dataset(collection / "manifest_bf16.jsonl");
  CHECK(bf16.dtype == io::st_dtype::BF16);
  CHECK(bf16.collection.adapter(0, 3) == lora::load_peft(collection / "adapters_bf16/bright/checkpoint-800"));
  const auto vec = pipeline::load_peft_dataset(collection / "manifest_vector.jsonl");
  CHECK(vec.kind == pipeline::condition_kind::vector);
  CHECK(vec.collection.feature_dim() == 8);
  CHECK(vec.collection.features(0)[0] == io::load_npy<float>(collection / "features/bright.npy").data[0]);
}

TEST_CASE("load_peft_dataset names the manifest line and the folder of a bad adapter or condition", "[pipeline]") {
  temp_dir t;
  const std::string ok = "{\"adapter\": \"" + adapter("bright/checkpoint-740") + "\", \"text\": \"a\"}\n";
  const auto fails = [&](const std::string& second, const std::string& message) {
    CHECK_THROWS_WITH(pipeline::load_peft_dataset(manifest_of(t.path(), ok + second)), Catch::Contains(message));
  };
  const fs::path other = cpdiff_io_test::fixtures_dir() / "lora/peft_handmade";
  fails("{\"adapter\": \"" + other.string() + "\", \"text\": \"b\"}\n",
        "line 2: its adapter does not share the layout of line 1: ");
  fails("{\"adapter\": \"" + (t.path() / "missing").string() + "\", \"text\": \"b\"}\n", "line 2: ");
  fails("{\"adapter\": \"" + (t.path() / "missing").string() + "\", \"text\": \"b\"}\n", "missing' is not a folder");
  fails("{\"adapter\": \"" + adapter("bright/checkpoint-760") + "\", \"text\": \"...\"}\n",
        "line 2: text '...': ");

  const fs::path v8 = collection / "features/bright.npy";
  io::save_npy<float>(t.path() / "v5.npy", std::vector<std::size_t>{5}, std::vector<float>(5, 1.0f));
  const std::string vec_ok = "{\"adapter\": \"" + adapter("bright/checkpoint-740") + "\", \"vector\": \"" + v8.string() + "\"}\n";
  CHECK_THROWS_WITH(pipeline::load_peft_dataset(manifest_of(t.path(), vec_ok + "{\"adapter\": \"" +
                                                                          adapter("spread/checkpoint-740") +
                                                                          "\", \"vector\": \"v5.npy\"}\n")),
                    Catch::Contains("line 2: condition vector '") && Catch::Contains("v5.npy' has 5 values, line 1's has 8"));
}

TEST_CASE("lora_generator: fit, save, load and generate give the same adapters in the collection's layout", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest.jsonl");
  temp_dir t;
  auto gen = pipeline::lora_generator<>::fit(ds, short_config(), {.work_dir = t.path() / "work"});
  CHECK(std::isfinite(gen.summary().autoencoder_mse));
  CHECK(std::isfinite(gen.summary().diffusion_loss));
  CHECK(fs::exists(t.path() / "work/autoencoder.ckpt"));
  CHECK(fs::exists(t.path() / "work/diffusion.ckpt"));
  gen.save(t.path() / "model");
  auto back = pipeline::lora_generator<>::load(t.path() / "model");
  CHECK(back.layout() == ds.collection.layout());
  CHECK(back.conditions().size() == 3);
  CHECK(back.config().to_json() == short_config().to_json());

  const auto feature = back.text_feature("detect a wide spread of the first feature");
  const auto a = gen.generate(feature, 3, 42), b = back.generate(feature, 3, 42);
  REQUIRE(a.size() == 3);
  CHECK(a == b);  // the folder holds everything generation depends on
  CHECK(a[0] != a[1]);
  CHECK(data::lora_layout(a[0]) == ds.collection.layout());
  CHECK(back.nearest_condition(feature) == 1);

  // saved as PEFT in the adapters' dtype, read back
  lora::save_peft(t.path() / "gen0", a[0], back.base_model(), io::st_dtype::F16);
  const auto r = lora::load_peft(t.path() / "gen0");
  CHECK(data::lora_layout(r) == ds.collection.layout());
  const auto& w = r.at("encoder.layer.1.attention.self.value");
  CHECK(w.b[3] == Approx(a[0].at("encoder.layer.1.attention.self.value").b[3]).epsilon(1e-3));

  CHECK_THROWS_WITH(back.generate(std::vector<float>(7, 0.1f), 1, 0),
                    Catch::Contains("the condition has 7 values; this generator was trained on text features of 32"));
  // saving again over the folder replaces it as a whole
  back.save(t.path() / "model");
  CHECK(pipeline::lora_generator<>::load(t.path() / "model").generate(feature, 3, 42) == a);
}

TEST_CASE("lora_generator: the autoencoder's stride is a setting; with_lora_generator picks the type", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest.jsonl");
  temp_dir t;
  pipeline::generator_config c = short_config();
  c.autoencoder_stride = 4;
  // the type must match the settings, and says how to pick it
  CHECK_THROWS_WITH(pipeline::lora_generator<>::fit(ds, c),
                    Catch::Contains("autoencoder_stride is 4, this type's is 2") && Catch::Contains("with_lora_generator"));
  const std::string text = "detect a wide spread of the first feature";
  std::size_t stride = 0;
  const std::vector<lora::adapter> a = pipeline::with_lora_generator(c.autoencoder_stride, [&]<class G>() {
    auto gen = G::fit(ds, c);
    gen.save(t.path() / "model");
    stride = G::autoencoder_type::stride;
    return gen.generate(gen.text_feature(text), 2, 7);
  });
  CHECK(stride == 4);
  REQUIRE(pipeline::read_generator_config(t.path() / "model").autoencoder_stride == 4);
  CHECK_THROWS_WITH(pipeline::lora_generator<>::load(t.path() / "model"),
                    Catch::Contains("generator.json") && Catch::Contains("config 'autoencoder_stride' is 4"));
  auto back = pipeline::lora_generator<cpu, 4>::load(t.path() / "model");
  REQUIRE(a.size() == 2);
  CHECK(back.generate(back.text_feature(text), 2, 7) == a);
  CHECK(data::lora_layout(a[0]) == ds.collection.layout());
  // files written before the setting existed load as stride 2; other strides are refused
  CHECK(pipeline::generator_config::from_json(nlohmann::json::object(), "x").autoencoder_stride == 2);
  CHECK_THROWS_WITH(pipeline::generator_config::from_json(nlohmann::json::parse(R"({"autoencoder_stride": 3})"), "'s.json'"),
                    Catch::Contains("'s.json': 'autoencoder_stride' must be 2 or 4"));
  CHECK_THROWS_WITH(pipeline::with_lora_generator(8, []<class G>() { return 0; }), Catch::Contains("autoencoder_stride 8"));
}

TEST_CASE("lora_generator::load refuses a folder whose parts disagree, naming the file", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest.jsonl");
  temp_dir t;
  auto gen = pipeline::lora_generator<>::fit(ds, short_config());
  gen.save(t.path() / "model");
  const fs::path m = t.path() / "model";

  // another collection's autoencoder (n = 96): its configuration is refused
  temp_dir t2;
  const std::string line = "{\"adapter\": \"" + (cpdiff_io_test::fixtures_dir() / "lora/peft_handmade").string() + "\", \"text\": \"";
  auto small = pipeline::lora_generator<>::fit(
      pipeline::load_peft_dataset(manifest_of(t2.path(), line + "a\"}\n" + line + "b\"}\n")), short_config());
  small.save(t2.path() / "model");
  fs::copy_file(t2.path() / "model/autoencoder.safetensors", m / "autoencoder.safetensors",
                fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(pipeline::lora_generator<>::load(m), Catch::Contains("autoencoder.safetensors"));

  gen.save(m);  // whole again
  auto edit_index = [&](auto&& f) {
    auto j = nlohmann::json::parse(io::read_file_text(m / "generator.json"));
    f(j);
    write_text(m / "generator.json", j.dump());
  };
  // One field of generator.json edited (on a whole folder each time) and the error load() must give. The sizes in
  // the index alone (tests/fuzz/regress/generator/) once built the models: terabytes for a width of 1e9.
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> edits = {
      {[](auto& j) { j["adapter"]["n"] = 255; }, "generator.json': 'n' is 255 but the modules hold 256"},
      {[](auto& j) { j["condition"]["dim"] = 16; }, "statistics.safetensors': tensor 'features' is not [3, 16]"},
      {[](auto& j) { j["condition"]["dim"] = 1000000000; },
       "statistics.safetensors': tensor 'features' is not [3, 1000000000]"},
      {[](auto& j) { j["config"]["timesteps"] = 1000000000; }, "'timesteps' must be in [2, 1000000]"},
      // text features of another width than the denoiser's: text_feature() could never be used with generate()
      {[](auto& j) { j["config"]["text_dim"] = 16; },
       "condition 'dim' is 32 but the text features of config 'text_dim' have 16"},
      {[](auto& j) { j["config"]["normalise"] = "sometimes"; }, "'normalise' must be \"pooled\" or \"per_condition\""},
  };
  for (const auto& [edit, message] : edits) {
    gen.save(m);
    edit_index(edit);
    CHECK_THROWS_WITH(pipeline::lora_generator<>::load(m), Catch::Contains(message));
  }
  auto narrow = short_config();
  narrow.text_dim = 16;
  CHECK_THROWS_WITH(pipeline::lora_generator<>::fit(ds, narrow), Catch::Contains("the data set's text features have 32 values, the settings' text_dim is 16"));
  gen.save(m);
  fs::remove(m / "denoiser.safetensors");
  CHECK_THROWS_WITH(pipeline::lora_generator<>::load(m), Catch::Contains("denoiser.safetensors"));
  // a folder that is not a generator is never replaced
  fs::create_directories(t.path() / "user");
  write_text(t.path() / "user/notes.txt", "mine");
  CHECK_THROWS_WITH(gen.save(t.path() / "user"), Catch::Contains("exists and is not a folder written by cpdiff"));
  CHECK(fs::exists(t.path() / "user/notes.txt"));
}

TEST_CASE("load_peft_dataset reads style images as conditions and names a bad image", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest_images.jsonl");
  CHECK(ds.kind == pipeline::condition_kind::images);
  CHECK(ds.collection.condition_count() == 3);
  CHECK(ds.image_shape == shape{2, 12, 12});
  REQUIRE(ds.collection.feature_dim() == 288);
  // the feature is the two images' grey pixels, one after the other
  const auto a = io::read_png_grey(collection / "images/agreement/0.png"), b = io::read_png_grey(collection / "images/agreement/1.png");
  std::vector<float> row(a.pixels);
  row.insert(row.end(), b.pixels.begin(), b.pixels.end());
  const auto f = ds.collection.features(2);
  CHECK(std::vector<float>(f.begin(), f.end()) == row);

  CHECK_THROWS_WITH(pipeline::load_peft_dataset(collection / "bad_images.jsonl"),
                    Catch::Contains("bad_images.jsonl' line 5: its condition has images [1, 12, 12] ([count, height, width]), "
                                    "line 1's has [2, 12, 12]"));
  temp_dir t;
  const fs::path png = cpdiff_io_test::fixtures_dir() / "png";
  const auto line = [&](const std::string& images) {
    return "{\"adapter\": \"" + adapter("bright/checkpoint-740") + "\", \"images\": [" + images + "]}\n";
  };
  const auto fails = [&](const std::string& images, const std::string& message) {
    CHECK_THROWS_WITH(pipeline::load_peft_dataset(manifest_of(t.path(), line(images))), Catch::Contains(message));
  };
  fails("\"" + (png / "grey8.png").string() + "\", \"" + (png / "style28.png").string() + "\"",
        "line 1: image '" + (png / "style28.png").string() + "' is 28 x 28 pixels, '" + (png / "grey8.png").string() +
            "' is 5 x 7: a condition's images share one size");
  fails("\"absent.png\"", "line 1: image '" + (t.path() / "absent.png").string() + "' not found");
  write_text(t.path() / "bad.png", "not an image");
  fails("\"bad.png\"", "line 1: cpdiff: io::read_png_grey: '" + (t.path() / "bad.png").string() + "': not a PNG file");
}

TEST_CASE("lora_generator on style images: the encoder is trained with the diffusion and saved with it", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest_images.jsonl");
  const std::vector<fs::path> spread{collection / "images/spread/0.png", collection / "images/spread/1.png"};
  for (const char* kind : {"pixels", "conv"}) {
    INFO(kind);
    temp_dir t;
    auto c = short_config();
    c.image_encoder = kind;
    c.image_feature = 16;
    auto gen = pipeline::lora_generator<>::fit(ds, c);
    REQUIRE(gen.encoder().trainable());
    CHECK(gen.encoder().feature_dim(288) == 16);
    // trained: its weights are no longer those it was built with (same seed)
    pipeline::generator_encoder<> fresh(kind, shape{2, 12, 12}, 16, c.seed + 4);
    CHECK(fresh.parameters().count() == gen.encoder().parameters().count());
    const auto first = [](parameter_store<float, cpu>& ps) {
      const auto v = ps.value(param_id{0});
      return std::vector<float>(v.data(), v.data() + v.size());
    };
    CHECK(first(fresh.parameters()) != first(gen.encoder().parameters()));

    gen.save(t.path() / "model");
    CHECK(fs::exists(t.path() / "model/encoder.safetensors"));
    auto back = pipeline::lora_generator<>::load(t.path() / "model");
    CHECK(back.kind() == pipeline::condition_kind::images);
    CHECK(back.image_shape() == shape{2, 12, 12});
    const std::vector<float> feature = back.images_feature(spread);
    const auto f = ds.collection.features(1);
    CHECK(feature == std::vector<float>(f.begin(), f.end()));
    CHECK(back.nearest_condition(feature) == 1);
    const auto a = gen.generate(feature, 2, 5), b = back.generate(feature, 2, 5);
    CHECK(a == b);  // the encoder's weights travel with the folder
    CHECK(data::lora_layout(a[0]) == ds.collection.layout());

    CHECK_THROWS_WITH(back.images_feature({spread[0]}), Catch::Contains("1 images given; this generator was trained on 2 images per condition"));
    CHECK_THROWS_WITH(back.images_feature({spread[0], cpdiff_io_test::fixtures_dir() / "png/style28.png"}),
                      Catch::Contains("style28.png' is 28 x 28 pixels; this generator was trained on 12 x 12"));
    CHECK_THROWS_WITH(back.text_feature("x"), Catch::Contains("trained on images conditions, not text"));
    fs::remove(t.path() / "model/encoder.safetensors");
    CHECK_THROWS_WITH(pipeline::lora_generator<>::load(t.path() / "model"), Catch::Contains("encoder.safetensors"));
  }
  auto c = short_config();
  c.image_encoder = "clip";
  CHECK_THROWS_WITH(pipeline::lora_generator<>::fit(ds, c), Catch::Contains("'image_encoder' must be \"pixels\" or \"conv\""));
}

namespace {
// A log that fails when a line starts with `text`, as a killed process stops (the checkpoint of that step is not
// yet written: progress is recorded before it).
class kill_at : public std::streambuf {
 public:
  explicit kill_at(std::string text) : text_(std::move(text)) {}

 protected:
  int overflow(int ch) override {
    line_ += static_cast<char>(ch);
    if (line_.rfind(text_, 0) == 0) throw std::runtime_error("killed at " + text_);
    if (ch == '\n') line_.clear();
    return ch;
  }

 private:
  std::string text_, line_;
};
}  // namespace

TEST_CASE("lora_generator: a fit killed mid-diffusion and resumed equals an uninterrupted one", "[pipeline]") {
  const auto ds = pipeline::load_peft_dataset(collection / "manifest.jsonl");
  auto c = short_config();
  c.checkpoint_every = 20;
  temp_dir t;
  auto whole = pipeline::lora_generator<>::fit(ds, c);

  kill_at killer("step 48/80");
  std::ostream log(&killer);
  log.exceptions(std::ios::badbit);
  CHECK_THROWS_WITH(pipeline::lora_generator<>::fit(ds, c, {.log = &log, .work_dir = t.path() / "w"}),
                    Catch::Contains("killed at step 48/80"));
  REQUIRE(fs::exists(t.path() / "w/diffusion.ckpt"));  // written at step 40
  auto resumed = pipeline::lora_generator<>::fit(ds, c, {.work_dir = t.path() / "w", .resume = true});
  const auto f = whole.text_feature("detect a bright mean of the second feature");
  CHECK(resumed.generate(f, 2, 5) == whole.generate(f, 2, 5));
}
