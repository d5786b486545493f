#pragma once
// The `cpdiff` command's argument parsing: "--name value" options, "--flag" switches and positional words.
//   cli::args a(argv_rest, {"--manifest", "--out", "--config"}, {"--quick", "--resume"});
//   if (!a.ok()) { std::cerr << a.problem(); return 2; }
//   a.value("--out"), a.has("--quick"), a.positional()
#include <map>
#include <set>
#include <string>
#include <vector>

namespace cli {

class args {
 public:
  args(const std::vector<std::string>& words, std::set<std::string> options, std::set<std::string> flags) {
    for (std::size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w == "--help" || w == "-h") {
        help_ = true;
      } else if (options.count(w)) {
        if (i + 1 == words.size()) {
          reject(w + " needs a value");
          return;
        }
        if (values_.count(w)) reject(w + " given twice");
        values_[w] = words[++i];
      } else if (flags.count(w)) {
        flags_.insert(w);
      } else if (w.size() > 1 && w[0] == '-') {
        reject("unknown option '" + w + "'");
      } else {
        positional_.push_back(w);
      }
    }
  }

  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }
  bool help() const { return help_; }
  bool has(const std::string& name) const { return values_.count(name) || flags_.count(name); }
  std::string value(const std::string& name, const std::string& otherwise = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? otherwise : it->second;
  }
  const std::vector<std::string>& positional() const { return positional_; }

  // Records a problem (the first one is kept).
  void reject(std::string why) {
    if (problem_.empty()) problem_ = std::move(why);
  }
  // Records a problem unless every name is given.
  void require(std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (!values_.count(n)) reject(std::string(n) + " is required");
  }
  // An unsigned integer option ("" when absent: the default), or a problem.
  std::size_t number(const std::string& name, std::size_t otherwise) {
    const std::string v = value(name);
    if (v.empty()) return otherwise;
    std::size_t used = 0;
    unsigned long long n = 0;
    try {
      n = std::stoull(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || v[0] == '-') reject(name + " '" + v + "' is not a non-negative integer");
    return static_cast<std::size_t>(n);
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
  std::string problem_;
  bool help_ = false;
};

}  // namespace cli
