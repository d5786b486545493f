// libFuzzer harness for model weights files (tensor/weights_file.hpp): load_weights(path, model) checks the
// __metadata__ format and the model's configuration (describe()), the tensor names, shapes and dtype and that
// every value is finite, and only then copies the values in. It takes a path, so the input is written to a file in
// a per-process scratch folder.
//
// Input: the whole input is the weights file (a safetensors file). It is loaded into two small models built
// afresh for each input, models::style_autoencoder<style_small> of n = 40 with the linear skip (BatchNorm
// running statistics included), in float and in double; the seeds are those models' own save_weights files (each
// is refused by the other model: another dtype). parameter_summary runs on both models after every load.
// A cpdiff error (any std::exception) from load_weights is the expected outcome for a bad file. A finding: a
// refused file that changed any parameter (weights_file.hpp: "nothing changes unless everything matches";
// compared bit for bit), or an accepted file after which a parameter is not the file's tensor bit for bit, a
// tensor had another dtype than the model's, or a parameter is not finite.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/models/style_autoencoder.hpp"
#include "cpdiff/tensor/weights_file.hpp"
#include "fuzz_util.hpp"

namespace {

volatile std::uint64_t sink;

// The model (make_seeds.cpp's weights_seeds builds the same: n, options; the seed only sets the initial values).
constexpr std::size_t model_n = 40;
template <class T>
using model_type = cpdiff::models::style_autoencoder<cpdiff::models::style_small, T>;

const cpdiff_fuzz::scratch_dir& scratch() {
  static const cpdiff_fuzz::scratch_dir d("weights");
  return d;
}

template <class T>
void load_into(const std::filesystem::path& file) {
  model_type<T> m(model_n, 1, {.linear_skip = true});
  auto& ps = m.parameters();
  const auto& cps = std::as_const(ps);
  const T* values = cps.values().data();
  const std::vector<T> before(values, values + ps.size());
  const char* what = std::is_same_v<T, float> ? "load_weights (float model)" : "load_weights (double model)";
  try {
    cpdiff::load_weights(file, m);
  } catch (const std::exception& e) {
    cpdiff_fuzz::refused(what, e);
    if (std::memcmp(before.data(), values, before.size() * sizeof(T)) != 0) __builtin_trap();  // refused, yet changed
    sink = sink + cpdiff::parameter_summary(cps).size();
    return;
  }
  cpdiff_fuzz::accepted(what);
  // Accepted: every parameter is now the file's tensor of that name, stored in the model's dtype, and finite.
  cpdiff_fuzz::checks_of_accepted(what, [&] {
    const cpdiff::io::safetensors_file f = cpdiff::io::load_safetensors(file);
    if (f.size() != ps.count()) __builtin_trap();
    constexpr cpdiff::io::st_dtype dtype =
        std::is_same_v<T, float> ? cpdiff::io::st_dtype::F32 : cpdiff::io::st_dtype::F64;
    for (const auto& e : cps.entries()) {
      const auto& t = f.at(e.name);
      if (t.dtype != dtype || t.numel() != e.shape.size()) __builtin_trap();
      const auto raw = f.raw(e.name);
      if (raw.size() != e.shape.size() * sizeof(T)) __builtin_trap();
      if (raw.size() > 0 && std::memcmp(raw.data(), values + e.offset, raw.size()) != 0) __builtin_trap();
    }
    for (std::size_t i = 0; i < ps.size(); ++i)
      if (!std::isfinite(values[i])) __builtin_trap();
    sink = sink + cpdiff::parameter_summary(cps).size() + cpdiff::parameter_summary(cps, 3).size();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = scratch() / "weights.safetensors";
  if (!cpdiff_fuzz::write_bytes(file, std::string_view(reinterpret_cast<const char*>(data), size))) return 0;
  load_into<float>(file);
  load_into<double>(file);
  return 0;
}
