#pragma once
// `cpdiff fit`: Cond P-Diff stages 2-5 on the PEFT adapters a manifest lists; the trained generator is a folder.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/pipeline/lora_generator.hpp"

namespace cli {

constexpr const char* fit_usage =
    "usage: cpdiff fit --manifest FILE --out MODEL [--config FILE] [--quick] [--resume] [--print-config]\n"
    "\n"
    "Learns to generate the LoRA adapters a manifest lists from their conditions (Cond P-Diff: a parameter\n"
    "autoencoder, then a conditional latent diffusion), and writes the trained generator to the folder MODEL.\n"
    "\n"
    "  --manifest FILE  JSON Lines, one adapter folder (PEFT: adapter_config.json + adapter_model.safetensors)\n"
    "                   a line with its condition, a text, a float vector .npy [D] or style images (PNG):\n"
    "                     {\"adapter\": \"runs/sst2/ckpt-12\", \"text\": \"sentiment of movie reviews\"}\n"
    "                     {\"adapter\": \"runs/sst2/ckpt-12\", \"vector\": \"feat/sst2.npy\"}\n"
    "                     {\"adapter\": \"runs/rot90/ckpt-3\", \"images\": [\"rot90/0.png\", \"rot90/1.png\"]}\n"
    "                   (every condition k images of one size, read as grey; an encoder of them is trained\n"
    "                   with the diffusion: image_encoder \"pixels\" or \"conv\" in the settings)\n"
    "                   relative paths resolve against the manifest's folder; the adapters share one layout\n"
    "  --out MODEL      the generator's folder (a previous one there is replaced as a whole)\n"
    "  --config FILE    JSON settings over the defaults (see --print-config for the names and values)\n"
    "  --quick          300 autoencoder and 1500 diffusion steps, to try it out in a few minutes\n"
    "  --resume         continue an interrupted fit from its checkpoints in MODEL.work/\n"
    "  --print-config   print the settings the fit would use, and exit\n"
    "\n"
    "Progress lines show the step, the loss, steps/s and the time left. Exit status: 0 done, 1 bad input, 2 usage.\n"
    "Under mpirun (a build with MPI) the ranks share every batch; rank 0 prints and writes MODEL.\n";

inline cpdiff::pipeline::generator_config fit_settings(const args& a) {
  using cpdiff::pipeline::generator_config;
  generator_config c = a.has("--quick") ? generator_config::quick() : generator_config();
  if (a.has("--config")) {
    const std::filesystem::path file = a.value("--config");
    cpdiff::io::json_parse_result parsed = cpdiff::io::parse_json(cpdiff::io::read_file_text(file));
    if (!parsed.ok())
      cpdiff::throw_error<cpdiff::config_error>("cpdiff fit", "'", file.string(), "' is not valid JSON: ", parsed.error);
    c = generator_config::from_json(parsed.value, "'" + file.string() + "'", c);
  }
  return c;
}

// comm: the ranks of an mpirun job (cpdiff.cpp), or nullptr for one process.
inline int fit(const std::vector<std::string>& words, cpdiff::train::communicator* comm = nullptr) {
  namespace pl = cpdiff::pipeline;
  args a(words, {"--manifest", "--out", "--config"}, {"--quick", "--resume", "--print-config"});
  if (a.help()) {
    std::cout << fit_usage;
    return 0;
  }
  if (!a.has("--print-config")) a.require({"--manifest", "--out"});
  if (!a.positional().empty()) a.reject("unexpected argument '" + a.positional()[0] + "'");
  if (!a.ok()) {
    std::cerr << "cpdiff fit: " << a.problem() << "\n\n" << fit_usage;
    return 2;
  }
  const pl::generator_config config = fit_settings(a);
  if (a.has("--print-config")) {
    std::cout << config.to_json().dump(2) << "\n";
    return 0;
  }
  const std::filesystem::path out = a.value("--out"), work = out.string() + ".work";
  const bool root = comm == nullptr || comm->is_root();
  std::ostringstream silent;
  std::ostream& say = root ? std::cout : silent;  // the other ranks read and train, and print nothing
  say << "reading the adapters of " << a.value("--manifest") << "\n";
  if (comm) say << "data parallel: " << comm->size() << " ranks (" << comm->name() << ")\n";
  const pl::peft_dataset ds = pl::load_peft_dataset(a.value("--manifest"), {.text_dim = config.text_dim, .log = &say});
  say << ds.adapters << " adapters, " << ds.collection.condition_count() << " conditions (" << to_string(ds.kind)
            << "), n = " << ds.collection.dim() << " parameters each, dtype " << cpdiff::io::st_dtype_name(ds.dtype)
            << "\n";
  if (a.has("--resume") && !std::filesystem::exists(work))
    say << "nothing to resume in " << work.string() << ": starting afresh\n";
  // the autoencoder's stride (setting autoencoder_stride) picks the generator's type
  const double seconds = pl::with_lora_generator(config.autoencoder_stride, [&]<class Generator>() {
    auto gen = Generator::fit(ds, config, {.log = root ? &std::cout : nullptr, .work_dir = work,
                                           .resume = a.has("--resume"), .comm = comm});
    if (root) {
      gen.save(out);
      std::filesystem::remove_all(work);
    }
    return gen.summary().seconds;
  });
  if (comm) comm->barrier();  // MODEL is in place when any rank returns
  say << "wrote " << out.string() << " (" << seconds << " s)\n";
  return 0;
}

}  // namespace cli
