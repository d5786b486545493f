// libFuzzer harness for trainer checkpoints (train/checkpoint.hpp's checkpoint_reader, driven the way the
// trainers resume: train::training_loop::resume checks the metadata, the names, dtypes and shapes, the values
// and the counters, then reads everything in). resume() takes a path, so the input is written to a file in a
// per-process scratch folder.
//
// Input: the whole input is the checkpoint (a safetensors file). The trainer it is resumed into is
// checkpoint_fixture.hpp's (the seeds are that trainer's own checkpoints, from make_seeds).
// A cpdiff error (any std::exception) is the expected outcome for a bad file; anything else is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "checkpoint_fixture.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("checkpoint");
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = scratch() / "checkpoint.safetensors";
  if (!cpdiff_fuzz::write_bytes(file, std::string_view(reinterpret_cast<const char*>(data), size))) return 0;
  cpdiff_fuzz::checkpoint_fixture fx;  // a fresh trainer each time: resume() changes it when it succeeds
  try {
    fx.loop->resume(file);
    cpdiff_fuzz::accepted("training_loop::resume");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("training_loop::resume", e);
    return 0;
  }
  // Resumed: the state must be one a run can reach.
  const auto& loop = *fx.loop;
  if (loop.step() >= (std::uint64_t{1} << 53)) __builtin_trap();
  if (loop.batches().position() > loop.batches().dataset_size()) __builtin_trap();
  for (const auto& h : loop.history())
    if (h.step == 0 || h.step > loop.step() || !std::isfinite(h.loss)) __builtin_trap();
  sink = sink + loop.history().size();
  return 0;
}
