#pragma once
// Writing a set of files as one: a reader sees the old set or the new one, never a mix.
//   io::write_folder_atomic("out/model", [&](const std::filesystem::path& tmp) { ...write files into tmp... },
//                           "generator.json");
// fill(tmp) writes into a fresh sibling folder "<target>.tmp-<unique>", which is then renamed into place. An
// existing target is renamed aside to "<target>.old-<unique>" first and removed after the new one is in place
// (between the two renames the target is briefly absent, never mixed). A target that exists is replaced only when
// it is an empty folder or holds `marker` (a set written before); anything else is refused with an io_error, so
// a mistyped path cannot delete a user's folder. If fill throws, the temporary folder is removed and the target
// is untouched.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

#include "cpdiff/core/error.hpp"

namespace cpdiff::io {

// "<pid>-<counter>-<clock>": distinct across processes and calls.
inline std::string unique_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::to_string(static_cast<long long>(::getpid())) + "-" + std::to_string(counter++) + "-" +
         std::to_string(static_cast<long long>(ticks));
}

template <class Fill>
void write_folder_atomic(const std::filesystem::path& target, Fill&& fill, const std::string& marker) {
  namespace fs = std::filesystem;
  constexpr const char* where = "io::write_folder_atomic";
  CPDIFF_CHECK(!target.empty() && target.has_filename(), io_error, where, "'", target.string(),
               "' is not a folder path (give one without a trailing '/')");
  std::error_code ec;
  const bool exists = fs::exists(target, ec);
  if (exists) {
    const bool empty_dir = fs::is_directory(target, ec) && fs::is_empty(target, ec);
    CPDIFF_CHECK(empty_dir || fs::exists(target / marker, ec), io_error, where, "'", target.string(),
                 "' exists and is not a folder written by cpdiff (no ", marker,
                 "): choose another path or remove it");
  }
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", target.parent_path().string(), "': ", ec.message());
  }
  const std::string suffix = unique_suffix();
  const fs::path tmp = target.string() + ".tmp-" + suffix, old = target.string() + ".old-" + suffix;
  fs::create_directory(tmp, ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", tmp.string(), "': ", ec.message());
  try {
    fill(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  if (exists) {
    fs::rename(target, old, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      throw_error<io_error>(where, "cannot move the previous '", target.string(), "' aside: ", ec.message());
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    const std::string why = ec.message();
    if (exists) fs::rename(old, target, ec);  // put the previous set back
    throw_error<io_error>(where, "cannot rename '", tmp.string(), "' to '", target.string(), "': ", why,
                          " (the new set is left in '", tmp.string(), "')");
  }
  if (exists) fs::remove_all(old, ec);
}

}  // namespace cpdiff::io
