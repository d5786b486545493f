#pragma once
// What a PEFT LoRA folder holds, without converting its values: the config, each module's A/B shapes and
// dtypes, the parameter count n (the length of the flat vector Cond P-Diff learns), and whether several
// folders share one layout (same modules, shapes, rank, alpha, rsLoRA; the dtype may differ).
//   lora::peft_summary s = lora::inspect_peft("runs/sst2/ckpt-12");
//   std::string why = lora::peft_layout_difference(s, lora::inspect_peft("runs/mrpc/ckpt-12"));  // "" if shared
// The folder is checked as load_peft checks it (io/peft.hpp): the same errors for the same defects.
#include <cstddef>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cpdiff/core/shape.hpp"
#include "cpdiff/io/peft.hpp"
#include "cpdiff/io/safetensors.hpp"

namespace cpdiff::lora {

struct peft_module_summary {
  shape a_shape;  // [r, in_features]
  shape b_shape;  // [out_features, r]
  io::st_dtype a_dtype = io::st_dtype::F32;
  io::st_dtype b_dtype = io::st_dtype::F32;
};

struct peft_summary {
  std::filesystem::path folder;
  peft_config config;
  std::map<std::string, peft_module_summary> modules;  // by module path, sorted

  std::size_t parameter_count() const {
    std::size_t n = 0;
    for (const auto& [name, m] : modules) n += m.a_shape.size() + m.b_shape.size();
    return n;
  }
  // The dtypes of the weights, sorted and comma-separated ("F16", or "F16, F32" for a mixed file).
  std::string dtypes() const {
    std::set<std::string> names;
    for (const auto& [name, m] : modules) {
      names.insert(std::string(io::st_dtype_name(m.a_dtype)));
      names.insert(std::string(io::st_dtype_name(m.b_dtype)));
    }
    std::string out;
    for (const auto& d : names) out += (out.empty() ? "" : ", ") + d;
    return out;
  }
};

// Reads <folder>/adapter_config.json and the header and tensors of <folder>/adapter_model.safetensors.
inline peft_summary inspect_peft(const std::filesystem::path& folder) {
  peft_summary s;
  s.folder = folder;
  s.config = read_peft_config(folder);
  const auto file = folder / peft_weights_file;
  const io::safetensors_file st = io::load_safetensors(file);
  for (const auto& [module, p] : peft_modules(file, st, s.config))
    s.modules[module] = {shape::from_range(p.a->shape.begin(), p.a->shape.end()),
                         shape::from_range(p.b->shape.begin(), p.b->shape.end()), p.a->dtype, p.b->dtype};
  return s;
}

// The first way in which `other` does not share `ref`'s layout (rank, alpha, rsLoRA, a module missing on
// either side, a shape), as a sentence naming both folders; "" when they share it. Dtypes may differ.
inline std::string peft_layout_difference(const peft_summary& ref, const peft_summary& other) {
  std::ostringstream os;
  os << std::boolalpha;
  const std::string a = "'" + ref.folder.string() + "'", b = "'" + other.folder.string() + "'";
  const auto differs = [&](const char* field, const auto& mine, const auto& theirs) {
    if (mine == theirs) return false;
    os << b << " has " << field << " = " << theirs << ", " << a << " " << field << " = " << mine;
    return true;
  };
  const peft_config &mine = ref.config, &theirs = other.config;
  if (differs("r", mine.r, theirs.r) || differs("lora_alpha", mine.lora_alpha, theirs.lora_alpha) ||
      differs("use_rslora", mine.use_rslora, theirs.use_rslora))
    return os.str();
  for (const auto& [module, m] : ref.modules) {
    const auto it = other.modules.find(module);
    if (it == other.modules.end()) return b + " has no module '" + module + "' (" + a + " has it)";
    if (it->second.a_shape != m.a_shape || it->second.b_shape != m.b_shape) {
      os << "module '" << module << "': " << b << " has lora_A " << it->second.a_shape << ", lora_B "
         << it->second.b_shape << "; " << a << " lora_A " << m.a_shape << ", lora_B " << m.b_shape;
      return os.str();
    }
  }
  for (const auto& [module, m] : other.modules)
    if (!ref.modules.count(module)) return b + " has module '" + module + "', which " + a + " has not";
  return "";
}

}  // namespace cpdiff::lora
