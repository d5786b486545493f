// libFuzzer harness for PEFT adapter folders (io/peft.hpp, io/peft_inspect.hpp), which are read from a path:
// the input becomes a folder in a per-process scratch directory.
//
// Input: u32 n | adapter_config.json (n bytes) | adapter_model.safetensors (the rest).
// (fuzz_util.hpp's "prefixed pair"; n past the end is clamped, the weights file is then empty.)
// The folder goes through lora::read_peft_config, lora::load_peft and lora::inspect_peft; an adapter that loads
// is checked against the inspection. A cpdiff error (any std::exception) is the expected outcome for a bad
// folder; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "cpdiff/io/peft.hpp"
#include "cpdiff/io/peft_inspect.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("peft");
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace lora = cpdiff::lora;
  const auto& dir = scratch();
  const auto parts = cpdiff_fuzz::split_prefixed(data, size);
  if (!cpdiff_fuzz::write_bytes(dir / lora::peft_config_file, parts.first) ||
      !cpdiff_fuzz::write_bytes(dir / lora::peft_weights_file, parts.second))
    return 0;
  try {
    const lora::peft_config c = lora::read_peft_config(dir.path());
    sink = sink + c.r + c.target_modules.size();
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("read_peft_config", e);
  }
  bool loaded = false;
  lora::adapter a;
  try {
    // NaN / infinite weights allowed: inspect_peft reads the layout only, and the two must agree on the rest.
    a = lora::load_peft(dir.path(), {.allow_non_finite = true});
    loaded = true;
    try {
      (void)lora::load_peft(dir.path());  // the default refuses non-finite weights, nothing else more
    } catch (const std::exception& e) {
      if (std::string_view(e.what()).find("lora::peft_load_options") == std::string_view::npos) __builtin_trap();
    }
    if (a.rank == 0 || a.modules.empty()) __builtin_trap();
    sink = sink + a.parameter_count();
    (void)a.scaling();
    cpdiff_fuzz::accepted("load_peft");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("load_peft", e);
  }
  try {
    const lora::peft_summary s = lora::inspect_peft(dir.path());
    if (!loaded) __builtin_trap();  // see below
    if (s.modules.size() != a.modules.size() || s.parameter_count() != a.parameter_count()) __builtin_trap();
    if (!lora::peft_layout_difference(s, s).empty()) __builtin_trap();
    sink = sink + s.dtypes().size();
  } catch (const std::exception&) {
    // peft_inspect.hpp: "the same errors for the same defects" as load_peft, so both refuse or both accept.
    if (loaded) __builtin_trap();
  }
  return 0;
}
