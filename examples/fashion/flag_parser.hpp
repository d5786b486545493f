#pragma once
// A small command-line flag parser for the examples: --name value, --switch, --help.
// An unknown flag, a missing value or a value that does not parse is a config_error naming the flag.
#include <cpdiff/core/error.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace example {

class flag_parser {
 public:
  flag_parser(std::string program, std::string about) : program_(std::move(program)), about_(std::move(about)) {}

  template <class V>
  void add(std::string name, V& target, std::string help) {
    std::ostringstream def;
    def << target;
    flags_.push_back({std::move(name), std::move(help), def.str(), false, [&target, this](const std::string& flag,
                                                                                          const std::string& v) {
                        std::istringstream in(v);
                        V parsed{};
                        if constexpr (std::is_same_v<V, std::string> || std::is_same_v<V, std::filesystem::path>)
                          parsed = V(v);
                        else if (!(in >> parsed) || !in.eof())
                          throw cpdiff::config_error(program_ + ": " + flag + ": cannot read '" + v + "'");
                        target = parsed;
                      }});
  }
  // A string flag that must be one of `choices` (help names what each means).
  void add_choice(std::string name, std::string& target, std::vector<std::string> choices, std::string help) {
    flags_.push_back({name, std::move(help), target, false,
                      [&target, choices = std::move(choices), this](const std::string& flag, const std::string& v) {
                        if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
                          std::string list;
                          for (std::size_t i = 0; i < choices.size(); ++i)
                            list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
                          throw cpdiff::config_error(program_ + ": " + flag + " must be " + list + " (got '" + v + "')");
                        }
                        target = v;
                      }});
  }
  void add_switch(std::string name, bool& target, std::string help) {
    flags_.push_back({std::move(name), std::move(help), "", true, [&target](const std::string&, const std::string&) { target = true; }});
  }

  // false after --help (usage printed); throws config_error on bad input.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        usage(std::cout);
        return false;
      }
      auto it = std::find_if(flags_.begin(), flags_.end(), [&](const flag& f) { return f.name == a; });
      if (it == flags_.end()) throw cpdiff::config_error(program_ + ": unknown flag '" + a + "' (see --help)");
      if (it->is_switch) {
        it->set(a, "");
      } else {
        if (i + 1 >= argc) throw cpdiff::config_error(program_ + ": " + a + " needs a value");
        it->set(a, argv[++i]);
      }
    }
    return true;
  }

  void usage(std::ostream& os) const {
    os << program_ << ": " << about_ << "\n\nflags:\n";
    for (const auto& f : flags_)
      os << "  " << f.name << (f.is_switch ? "" : " V") << "\n      " << f.help
         << (f.is_switch || f.def.empty() ? "" : " (default " + f.def + ")") << "\n";
  }

 private:
  struct flag {
    std::string name, help, def;
    bool is_switch;
    std::function<void(const std::string&, const std::string&)> set;
  };
  std::string program_, about_;
  std::vector<flag> flags_;
};

// "r,alpha" (a LoRA's rank and lora_alpha): r a positive integer, alpha a positive number.
inline std::pair<std::size_t, double> parse_rank_alpha(const std::string& v, const std::string& flag) {
  std::istringstream in(v);
  long long r = 0;
  double alpha = 0;
  char comma = 0;
  if (!(in >> r >> comma >> alpha) || comma != ',' || !in.eof() || r <= 0 || !(alpha > 0))
    throw cpdiff::config_error(flag + ": expected rank,alpha with a positive integer rank and a positive alpha (e.g. "
                               "16,32), got '" + v + "'");
  return {static_cast<std::size_t>(r), alpha};
}

}  // namespace example
