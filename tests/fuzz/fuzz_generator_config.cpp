// libFuzzer harness for the generator's settings file (pipeline/generator_config.hpp): the input is JSON text,
// parsed with the library's bounded io::parse_json as `cpdiff fit --config FILE` does, then given to
// generator_config::from_json over the defaults and over quick(). A config that is accepted must pass its
// own validate() and survive a round trip through to_json(). A cpdiff error (any std::exception) is the
// expected outcome for bad settings; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string_view>

#include "cpdiff/io/json_read.hpp"
#include "cpdiff/pipeline/generator_config.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

void accept(const nlohmann::json& j, const cpdiff::pipeline::generator_config& base) {
  namespace pl = cpdiff::pipeline;
  pl::generator_config c;
  try {
    c = pl::generator_config::from_json(j, "fuzz", base);
    cpdiff_fuzz::accepted("generator_config::from_json");
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused("generator_config::from_json", e);
    return;
  }
  c.validate("fuzz");  // must not throw: from_json validated it
  const nlohmann::json again = c.to_json();
  const pl::generator_config d = pl::generator_config::from_json(again, "fuzz round trip");
  if (d.to_json() != again) __builtin_trap();
  sink = sink + c.batch + c.timesteps;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cpdiff::io::json_parse_result r = cpdiff::io::parse_json(text);
  if (!r.ok()) {
    if (r.error.size() < 4096) cpdiff_fuzz::refused("io::parse_json", std::runtime_error(r.error));
    if (r.error.empty() || !r.value.is_null()) __builtin_trap();
    return 0;
  }
  sink = sink + cpdiff::io::json_excerpt(r.value).size();
  accept(r.value, cpdiff::pipeline::generator_config());
  accept(r.value, cpdiff::pipeline::generator_config::quick());
  return 0;
}
