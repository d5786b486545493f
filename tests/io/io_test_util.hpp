#pragma once
// Shared helpers for the io tests: a self-removing temporary folder and the fixtures path.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace cpdiff_io_test {

// tests/fixtures, from CPDIFF_FIXTURES_DIR when the build defines it, else relative to this file.
inline std::filesystem::path fixtures_dir() {
#ifdef CPDIFF_FIXTURES_DIR
  return std::filesystem::path(CPDIFF_FIXTURES_DIR);
#else
  const std::filesystem::path here = std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures";
  if (std::filesystem::exists(here)) return here;
  return std::filesystem::path("tests") / "fixtures";
#endif
}

class temp_dir {
 public:
  temp_dir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("cpdiff_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  // Names of everything in the folder (non-recursive), sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path path_;
};

inline std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(static_cast<unsigned char>(s[i]));
  return out;
}

inline std::string to_string(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace cpdiff_io_test
