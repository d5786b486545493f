// libFuzzer harness for the pipeline's JSON Lines manifest (pipeline/manifest.hpp, pipeline::read_manifest),
// which takes a path: the whole input is written to manifest.jsonl in a per-process scratch folder.
// Every entry of a manifest that reads is checked (a line number within the file, one kind of condition, a
// non-empty adapter path and condition). A cpdiff error (any std::exception) is the expected outcome for a bad
// manifest; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>
#include <vector>

#include "cpdiff/pipeline/manifest.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("manifest");
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pl = cpdiff::pipeline;
  const auto file = scratch() / "manifest.jsonl";
  if (!cpdiff_fuzz::write_bytes(file, std::string_view(reinterpret_cast<const char*>(data), size))) return 0;
  std::vector<pl::manifest_entry> entries;
  try {
    entries = pl::read_manifest(file);
    cpdiff_fuzz::accepted("read_manifest");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("read_manifest", e);
    return 0;
  }
  if (entries.empty()) __builtin_trap();
  std::size_t last_line = 0;
  for (const auto& e : entries) {
    if (e.line <= last_line || e.line > size + 1 || e.kind != entries.front().kind) __builtin_trap();
    last_line = e.line;
    if (e.adapter.empty() || e.condition_key().empty()) __builtin_trap();
    sink = sink + e.condition_key().size() + e.adapter.native().size();
  }
  return 0;
}
