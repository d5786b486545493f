// libFuzzer harness for data::lora_collection::load (data/lora_collection_io.hpp, data/lora_layout.hpp), which
// reads a folder: index.json, features.npy and the condition files the index names.
//
// Input: fuzz_util.hpp's "archive": records  u8 k | file name (k bytes) | u32 n | content (n bytes), at most 16
// files, written into a per-process scratch folder (names made plain: no '/', not "." or ".."). The seeds
// hold the files lora_collection::save writes, so the fuzzer can both edit them and rename them.
// A collection that loads is used: its layout, every condition's features, statistics, normalise /
// denormalise of its first checkpoint and unflatten() to an adapter, and the pooled statistics.
// A cpdiff error (any std::exception) from load() is the expected outcome for a bad folder; anything else is a
// finding, and so is an exception from using a collection that load() accepted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <vector>

#include "cpdiff/data/lora_collection.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("lora_collection");
  return d;
}

void exercise(const cpdiff::data::lora_collection& c) {
  const std::size_t n = c.dim();
  if (n == 0 || n != c.layout().size()) __builtin_trap();
  for (const auto& s : c.layout().slots())
    if (s.offset + s.size() > n) __builtin_trap();
  bool any = false;
  for (std::size_t i = 0; i < c.condition_count(); ++i) {
    sink = sink + c.name(i).size() + c.features(i).size();
    if (c.features(i).size() != c.feature_dim()) __builtin_trap();
    const std::size_t k = c.checkpoint_count(i);
    if (c.checkpoints(i).size() != k * n) __builtin_trap();
    if (k == 0) continue;
    any = true;
    const auto& st = c.statistics(i);
    if (st.dim() != n) __builtin_trap();
    const std::span<const float> first = c.checkpoint(i, 0);
    const std::vector<float> z = c.normalise(first, i);
    const std::vector<float> back = c.denormalise(z, i);
    if (back.size() != n) __builtin_trap();
    const cpdiff::lora::adapter a = c.adapter(i, k - 1);
    if (a.parameter_count() != n || a.size() * 2 != c.layout().slots().size()) __builtin_trap();
    if (c.layout().flatten(a).size() != n) __builtin_trap();
  }
  if (any) sink = sink + c.pooled_statistics().dim();
  sink = sink + c.total_checkpoints();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return cpdiff_fuzz::fuzz_folder_reader(
      scratch(), data, size, "lora_collection::load",
      [](const auto& path) { return cpdiff::data::lora_collection::load(path); },
      [](cpdiff::data::lora_collection& c) { exercise(c); });
}
