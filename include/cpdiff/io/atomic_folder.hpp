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
//
// Some files of a folder that holds others too (a PEFT adapter inside a Trainer checkpoint folder):
//   io::update_folder_atomic("ckpt-12", [&](const std::filesystem::path& tmp) { ...write the set into tmp... });
// The new folder is assembled the same way from the set plus every other entry of the target, hard-linked (same
// inode: nothing is copied; copied only where the file system refuses links; sub-folders recreated, symbolic
// links recreated), then swapped in as above. Entries that appear in the target while the set is written are
// moved across after the swap. A target that is a symbolic link is followed: the folder it names is updated.
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <stdio.h>

#include "cpdiff/core/error.hpp"
#include "cpdiff/io/atomic_file.hpp"

namespace cpdiff::io {

namespace detail {
// Moves the complete folder `fresh` to `target` (see above) and returns where the old set now is (empty if there
// was none): the caller removes it. `where` names the caller in errors.
inline std::filesystem::path swap_in_folder(const std::filesystem::path& fresh, const std::filesystem::path& target,
                                            const char* where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto rename_or_throw = [&](const fs::path& from, const fs::path& to) {
    fs::rename(from, to, ec);
    CPDIFF_CHECK(!ec, io_error, where, "cannot rename '", from.string(), "' to '", to.string(), "': ", ec.message());
  };
  if (!fs::exists(fs::symlink_status(target, ec))) {
    rename_or_throw(fresh, target);
    return {};
  }
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return fresh;
  const fs::path aside = unique_temp_path(target);  // a temporary name, so orphan_temp_files finds it
  rename_or_throw(target, aside);
  try {
    rename_or_throw(fresh, target);
  } catch (const io_error&) {
    fs::rename(aside, target, ec);  // put the old set back
    throw;
  }
  return aside;
}

// Recreates the entry `from` as `to` without copying file contents where it can: a hard link for a regular file
// (a copy where links are refused), a new folder with its entries recreated for a folder, the same link for a
// symbolic link. Anything else (a FIFO, a socket, a device) cannot be carried and is an io_error.
inline void link_entry(const std::filesystem::path& from, const std::filesystem::path& to, const char* where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(from, ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot read '", from.string(), "': ", ec.message());
  if (fs::is_symlink(st)) {
    fs::copy_symlink(from, to, ec);
  } else if (fs::is_regular_file(st)) {
    fs::create_hard_link(from, to, ec);
    if (ec) fs::copy_file(from, to, ec);
  } else if (fs::is_directory(st)) {
    fs::create_directory(to, from, ec);  // with from's permissions
    for (fs::directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec))
      link_entry(it->path(), to / it->path().filename(), where);
  } else {
    throw_error<io_error>(where, "cannot keep '", from.string(),
                          "' in the updated folder: it is not a file, a folder or a symbolic link; move it away first");
  }
  CPDIFF_CHECK(!ec, io_error, where, "cannot carry '", from.string(), "' over to '", to.string(), "': ", ec.message());
}

// "out/model/" names "out/model"; `where` names the caller in errors.
inline std::filesystem::path folder_target(std::filesystem::path target, const char* where) {
  if (!target.has_filename()) target = target.parent_path();
  CPDIFF_CHECK(!target.empty(), io_error, where, "empty folder path");
  return target;
}

inline void create_parent(const std::filesystem::path& target, const char* where) {
  if (!target.has_parent_path()) return;
  std::error_code ec;
  std::filesystem::create_directories(target.parent_path(), ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", target.parent_path().string(), "': ", ec.message());
}
}  // namespace detail

template <class Fill>
void write_folder_atomic(std::filesystem::path target, Fill&& fill, const std::string& marker,
                         const char* where = "io::write_folder_atomic") {
  namespace fs = std::filesystem;
  target = detail::folder_target(std::move(target), where);
  std::error_code ec;
  if (fs::exists(target, ec)) {
    const bool empty_dir = fs::is_directory(target, ec) && fs::is_empty(target, ec);
    CPDIFF_CHECK(empty_dir || (fs::is_directory(target, ec) && fs::exists(target / marker, ec)), io_error, where, "'",
                 target.string(), "' exists and is not a folder written by cpdiff (no ", marker,
                 "): choose another path or remove it");
  }
  detail::create_parent(target, where);
  const fs::path fresh = detail::unique_temp_path(target);
  fs::create_directory(fresh, ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", fresh.string(), "': ", ec.message());
  try {
    fill(fresh);
    const fs::path old = detail::swap_in_folder(fresh, target, where);
    if (!old.empty()) fs::remove_all(old, ec);
  } catch (...) {
    fs::remove_all(fresh, ec);
    throw;
  }
}

template <class Fill>
void update_folder_atomic(std::filesystem::path target, Fill&& fill, const char* where = "io::update_folder_atomic") {
  namespace fs = std::filesystem;
  target = detail::folder_target(std::move(target), where);
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(target, ec))) {
    target = fs::canonical(target, ec);
    CPDIFF_CHECK(!ec, io_error, where, "'", target.string(), "' is a symbolic link to nothing: ", ec.message());
  }
  const bool existed = fs::exists(target, ec);
  CPDIFF_CHECK(!existed || fs::is_directory(target, ec), io_error, where, "'", target.string(),
               "' exists and is not a folder: choose another path");
  detail::create_parent(target, where);
  const fs::path fresh = detail::unique_temp_path(target);
  fs::create_directory(fresh, ec);
  CPDIFF_CHECK(!ec, io_error, where, "cannot create folder '", fresh.string(), "': ", ec.message());
  fs::path old;
  try {
    fill(fresh);
    if (existed) {
      fs::permissions(fresh, fs::status(target, ec).permissions(), ec);
      for (fs::directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path to = fresh / it->path().filename();
        std::error_code ec2;
        if (!fs::exists(fs::symlink_status(to, ec2))) detail::link_entry(it->path(), to, where);  // fill's files win
      }
      CPDIFF_CHECK(!ec, io_error, where, "cannot list '", target.string(), "': ", ec.message());
    }
    old = detail::swap_in_folder(fresh, target, where);
  } catch (...) {
    fs::remove_all(fresh, ec);
    throw;
  }
  if (old.empty()) return;
  // Entries that appeared in the target while the set was written are moved across, not lost with the old folder;
  // the old folder stays (an orphan that remove_orphan_temp_files finds) if any cannot be.
  bool all_moved = true;
  for (fs::directory_iterator it(old, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    const fs::path to = target / it->path().filename();
    if (fs::exists(fs::symlink_status(to, ec2))) continue;
    fs::rename(it->path(), to, ec2);
    all_moved = all_moved && !ec2;
  }
  if (all_moved && !ec) fs::remove_all(old, ec);
}

}  // namespace cpdiff::io
