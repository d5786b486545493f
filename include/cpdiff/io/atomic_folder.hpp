#pragma once
// Writing a set of files as one: a reader sees the old set or the new one, never a mix.
//   io::write_folder_atomic("out/model", [&](const std::filesystem::path& tmp) { ...write files into tmp... },
//                           "generator.json");
// fill(tmp) writes into a fresh sibling folder "<target>.tmp.<pid>.<n>.<random>" (io/atomic_file.hpp's names, so
// orphan_temp_files finds one a killed process left), which then replaces the target: swapped with an existing
// target in one step where the file system can (renameat2 RENAME_EXCHANGE), else the old one is renamed aside
// first (the target is then briefly absent, never mixed); the old set is removed after. A target that exists is
// replaced only when it is an empty folder or holds `marker` (a set written before); anything else is refused
// with an io_error, so a mistyped path cannot delete a user's folder. If fill throws, the temporary folder is
// removed and the target is untouched.
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <stdio.h>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"

namespace cpdiff::io {

namespace detail {
// Moves the complete folder `fresh` to `target` (see above); `where` names the caller in errors.
inline void replace_folder(const std::filesystem::path& fresh, const std::filesystem::path& target, const char* where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto rename_or_throw = [&](const fs::path& from, const fs::path& to) {
    fs::rename(from, to, ec);
    CPDIFF_CHECK(!ec, io_error, where, "cannot rename '", from.string(), "' to '", to.string(), "': ", ec.message());
  };
  if (!fs::exists(fs::symlink_status(target, ec))) {
    rename_or_throw(fresh, target);
    return;
  }
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(fresh, ec);  // now holds the old set
    return;
  }
  const fs::path aside = unique_temp_path(target, ".old.");
  rename_or_throw(target, aside);
  try {
    rename_or_throw(fresh, target);
  } catch (const io_error&) {
    fs::rename(aside, target, ec);  // put the old set back
    throw;
  }
  fs::remove_all(aside, ec);
}
}  // namespace detail

template <class Fill>
void write_folder_atomic(std::filesystem::path target, Fill&& fill, const std::string& marker,
                         const char* where = "io::write_folder_atomic") {
  namespace fs = std::filesystem;
  if (!target.has_filename()) target = target.parent_path();  // "out/model/" names "out/model"
  CPDIFF_CHECK(!target.empty(), io_error, where, "empty folder path");
  std::error_code ec;
  if (fs::exists(target, ec)) {
    const bool empty_dir = fs::is_directory(target, ec) && fs::is_empty(target, ec);
    CPDIFF_CHECK(empty_dir || (fs::is_directory(target, ec) && fs::exists(target / marker, ec)), io_error, where, "'",
                 target.string(), "' exists and is not a folder written by cpdiff (no ", marker,
                 "): choose another path or remove it");
  }
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", target.parent_path().string(), "': ", ec.message());
  }
  const fs::path fresh = detail::unique_temp_path(target);
  fs::create_directory(fresh, ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", fresh.string(), "': ", ec.message());
  try {
    fill(fresh);
    detail::replace_folder(fresh, target, where);
  } catch (...) {
    fs::remove_all(fresh, ec);
    throw;
  }
}

}  // namespace cpdiff::io
