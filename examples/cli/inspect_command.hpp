#pragma once
// `cpdiff inspect DIR...`: each PEFT folder's layout, and whether several share one.
#include <iostream>
#include <string>
#include <vector>

#include "cpdiff/io/peft_inspect.hpp"

namespace cli {

constexpr const char* inspect_usage =
    "usage: cpdiff inspect DIR...\n"
    "\n"
    "Reads each PEFT LoRA folder (its config and weights, checked as cpdiff loads them) and prints its layout.\n"
    "With several folders, says whether they share one layout: the same modules, shapes, rank, lora_alpha and\n"
    "use_rslora (dtypes may differ). Exit status: 0 when every folder reads and all share one layout, 1 otherwise.\n";

inline void print_summary(std::ostream& os, const cpdiff::lora::peft_summary& s) {
  const auto& c = s.config;
  os << s.folder.string() << ": r " << c.r << ", lora_alpha " << c.lora_alpha << (c.use_rslora ? " (rsLoRA)" : "")
     << ", dtype " << s.dtypes() << ", " << s.modules.size() << " modules, n = " << s.parameter_count() << "\n";
  if (!c.base_model_name_or_path.empty()) os << "  base model: " << c.base_model_name_or_path << "\n";
  for (const auto& [module, m] : s.modules)
    os << "  " << module << "  lora_A " << m.a_shape << "  lora_B " << m.b_shape << "\n";
}

inline int inspect(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << "cpdiff inspect: no folder given\n\n" << inspect_usage;
    return 2;
  }
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << inspect_usage;
      return 0;
    }
  std::vector<cpdiff::lora::peft_summary> read;
  int status = 0;
  for (const auto& dir : args) {
    try {
      read.push_back(cpdiff::lora::inspect_peft(dir));
      print_summary(std::cout, read.back());
    } catch (const cpdiff::error& e) {
      std::cerr << e.what() << "\n";
      status = 1;
    }
  }
  if (read.size() < 2) return status;
  std::size_t differ = 0;
  for (std::size_t i = 1; i < read.size(); ++i)
    if (const std::string why = cpdiff::lora::peft_layout_difference(read[0], read[i]); !why.empty()) {
      std::cout << "layout differs: " << why << "\n";
      ++differ;
    }
  if (differ == 0)
    std::cout << "all " << read.size() << " folders read share one layout (n = " << read[0].parameter_count() << ")\n";
  else
    std::cout << differ << " of the " << read.size() - 1 << " other folders do not share the layout of '"
              << read[0].folder.string() << "'\n";
  return differ == 0 ? status : 1;
}

}  // namespace cli
