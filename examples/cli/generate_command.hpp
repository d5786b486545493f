#pragma once
// `cpdiff generate`: Cond P-Diff stage 6 from a trained generator folder to PEFT adapter folders.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "cpdiff/io/atomic_folder.hpp"
#include "cpdiff/io/npy.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/pipeline/lora_generator.hpp"

namespace cli {

constexpr const char* generate_usage =
    "usage: cpdiff generate --model MODEL (--text T | --vector F.npy | --images A.png B.png ...) --count N --out DIR\n"
    "                       [--seed S]\n"
    "\n"
    "Generates N LoRA adapters for a condition with the generator `cpdiff fit` wrote to MODEL, and writes them to\n"
    "DIR/adapter_000, DIR/adapter_001, ... as PEFT folders: the training adapters' keys, shapes, config and dtype.\n"
    "\n"
    "  --text T        the condition's description (a generator fitted on text conditions)\n"
    "  --vector F.npy  the condition's float vector [D] (a generator fitted on vector conditions)\n"
    "  --images A.png B.png ...  the condition's style images (a generator fitted on images conditions): as many\n"
    "                  PNG files of the size it was fitted on, in the same order as the manifest's lists\n"
    "  --count N       how many adapters\n"
    "  --out DIR       written as a whole (a previous output there is replaced; another folder is refused)\n"
    "  --seed S        the sampler's seed (default 0): the same seed gives the same adapters\n"
    "\n"
    "DIR/generated.json records the model, the condition, the seed and the nearest training condition.\n"
    "Exit status: 0 done, 1 bad input, 2 usage.\n";

template <class Generator>
std::vector<float> condition_vector(const args& a, Generator& gen) {
  if (a.has("--text")) return gen.text_feature(a.value("--text"));  // refuses a generator of other conditions
  if (a.has("--images")) {  // refuses a generator of other conditions, another count or size of images
    const std::vector<std::filesystem::path> files(a.positional().begin(), a.positional().end());
    return gen.images_feature(files);
  }
  CPDIFF_CHECK(gen.kind() == cpdiff::pipeline::condition_kind::vector, cpdiff::config_error, "cpdiff generate",
               "this generator was trained on ", to_string(gen.kind()), " conditions: give --",
               to_string(gen.kind()), ", not --vector");
  const auto v = cpdiff::io::load_npy<float>(a.value("--vector"));
  CPDIFF_CHECK(v.shape.size() == 1 || (v.shape.size() == 2 && v.shape[0] == 1), cpdiff::shape_error, "cpdiff generate",
               "'", a.value("--vector"), "' has shape ", cpdiff::shape::from_range(v.shape.begin(), v.shape.end()),
               ", expected a vector [D] or [1, D]");
  return v.data;
}

// Generates `count` adapters for the condition of `a` and writes them to --out as a set.
template <class Generator>
int write_generated(const args& a, Generator& gen, std::size_t count, std::size_t seed) {
  const std::vector<float> c = condition_vector(a, gen);
  const auto adapters = gen.generate(c, count, seed);
  const std::size_t nearest = gen.nearest_condition(c);
  nlohmann::json record = {{"model", std::filesystem::absolute(a.value("--model")).string()},
                           {"condition", a.has("--text")     ? nlohmann::json(a.value("--text"))
                                         : a.has("--images") ? nlohmann::json(a.positional())
                                                             : nlohmann::json(a.value("--vector"))},
                           {"seed", seed},
                           {"count", count},
                           {"nearest_training_condition", gen.conditions()[nearest].name},
                           {"adapters", nlohmann::json::array()}};
  const std::filesystem::path out = a.value("--out");
  cpdiff::io::write_folder_atomic(out, [&](const std::filesystem::path& tmp) {
    for (std::size_t i = 0; i < adapters.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "adapter_%03zu", i);
      cpdiff::lora::save_peft(tmp / name, adapters[i], gen.base_model(), gen.dtype());
      record["adapters"].push_back(name);
    }
    cpdiff::io::write_file_atomic(tmp / "generated.json", record.dump(2) + "\n");
  }, "generated.json");
  std::cout << "wrote " << count << " adapters (n = " << gen.layout().size() << ", dtype "
            << cpdiff::io::st_dtype_name(gen.dtype()) << ") to " << out.string() << "; nearest training condition: "
            << gen.conditions()[nearest].name << "\n";
  return 0;
}

inline int generate(const std::vector<std::string>& words) {
  namespace pl = cpdiff::pipeline;
  args a(words, {"--model", "--text", "--vector", "--count", "--out", "--seed"}, {"--images"});
  if (a.help()) {
    std::cout << generate_usage;
    return 0;
  }
  a.require({"--model", "--count", "--out"});
  if (int(a.has("--text")) + int(a.has("--vector")) + int(a.has("--images")) != 1)
    a.reject("give one of --text, --vector and --images");
  const std::size_t count = a.number("--count", 0), seed = a.number("--seed", 0);
  if (count == 0) a.reject("--count must be a positive integer");
  if (a.has("--images") && a.positional().empty()) a.reject("--images needs the PNG files");
  if (!a.has("--images") && !a.positional().empty()) a.reject("unexpected argument '" + a.positional()[0] + "'");
  if (!a.ok()) {
    std::cerr << "cpdiff generate: " << a.problem() << "\n\n" << generate_usage;
    return 2;
  }
  const std::filesystem::path model = a.value("--model");
  // the autoencoder's stride, recorded in the model's settings, picks the generator's type
  return pl::with_lora_generator(pl::read_generator_config(model).autoencoder_stride, [&]<class Generator>() {
    auto gen = Generator::load(model);
    return write_generated(a, gen, count, seed);
  });
}

}  // namespace cli
