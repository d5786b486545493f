#pragma once
// Whole-file I/O with atomic replacement.
//
// atomic_file_writer writes to "<target>.tmp.<pid>.<n>.<random>" in the target's folder (unique per save,
// so threads and processes saving one target never share a temporary file), and commit() flushes, fsyncs,
// closes and renames the temporary file over the target. If anything fails, or the writer is destroyed
// without commit(), the temporary file is removed and the target is left untouched. A process killed
// mid-save leaves its temporary file: orphan_temp_files() lists those of dead processes and
// remove_orphan_temp_files() removes them.
// Failures throw cpdiff::io_error naming the path and the system's reason (errno text).
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpdiff/core/error.hpp"

namespace cpdiff::io {

namespace detail {
inline std::string errno_text(int err) { return std::strerror(err); }

// "<target><tag><pid>.<n>.<random>" (tag ".tmp."): n counts the names made by this process, the random
// part (drawn once per process) keeps names apart across processes that reuse a pid.
inline std::filesystem::path unique_temp_path(const std::filesystem::path& target, const char* tag = ".tmp.") {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t salt = []() -> std::uint64_t {
    try {
      std::random_device rd;
      return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    } catch (const std::exception&) {  // no entropy source: the clock still differs between processes
      return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
  }();
  const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t mix = salt ^ (n * 0x9E3779B97F4A7C15ull);
  char tail[80];
  std::snprintf(tail, sizeof tail, "%lld.%llu.%016llx", static_cast<long long>(::getpid()),
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(mix));
  return target.string() + tag + tail;
}

// The pid in the name of a temporary file of `target` ("<target>.tmp.<pid>[.<n>.<random>]"), or 0.
inline long long temp_file_pid(const std::string& name, const std::string& target_name) {
  const std::string prefix = target_name + ".tmp.";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  long long pid = 0;
  std::size_t i = prefix.size();
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && pid < (1LL << 40); ++i)
    pid = pid * 10 + (name[i] - '0');
  return (i == name.size() || name[i] == '.') ? pid : 0;
}

inline bool process_alive(long long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH; }
}  // namespace detail

// Temporary files of `target` left by processes that no longer run (a save that was killed). Only this
// machine's processes can be checked: on a folder shared between machines, call this where the writers ran.
inline std::vector<std::filesystem::path> orphan_temp_files(const std::filesystem::path& target) {
  std::vector<std::filesystem::path> out;
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  const std::string target_name = target.filename().string();
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const long long pid = detail::temp_file_pid(it->path().filename().string(), target_name);
    if (pid > 0 && !detail::process_alive(pid)) out.push_back(it->path());
  }
  return out;
}
// Removes orphan_temp_files(target) (temporary folders of a folder-set save included) and returns them.
inline std::vector<std::filesystem::path> remove_orphan_temp_files(const std::filesystem::path& target) {
  std::vector<std::filesystem::path> removed;
  for (const auto& p : orphan_temp_files(target)) {
    std::error_code ec;
    if (std::filesystem::remove_all(p, ec) > 0 && !ec) removed.push_back(p);
  }
  return removed;
}

class atomic_file_writer {
 public:
  explicit atomic_file_writer(std::filesystem::path target)
      : target_(std::move(target)) {
    if (target_.empty()) throw_error<io_error>("write_file_atomic", "empty path");
    for (int attempt = 0; attempt < 8 && fd_ < 0; ++attempt) {
      temp_ = detail::unique_temp_path(target_);
      do {
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);  // never another save's file
      } while (fd_ < 0 && errno == EINTR);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0) {
      const int err = errno;
      throw_error<io_error>("write_file_atomic", "cannot create temporary file '", temp_.string(),
                            "' for '", target_.string(), "': ", detail::errno_text(err));
    }
  }
  atomic_file_writer(const atomic_file_writer&) = delete;
  atomic_file_writer& operator=(const atomic_file_writer&) = delete;
  ~atomic_file_writer() { abandon(); }

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }
  bool committed() const { return committed_; }

  void write(const void* data, std::size_t n) {
    if (committed_ || fd_ < 0) throw_error<io_error>("write_file_atomic", "write after commit for '", target_.string(), "'");
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const std::size_t chunk = n < (std::size_t{1} << 30) ? n : (std::size_t{1} << 30);
      const ::ssize_t w = ::write(fd_, p, chunk);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write to '", errno);
      }
      if (w == 0) fail("cannot write to '", ENOSPC);
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void write(std::span<const std::byte> bytes) { write(bytes.data(), bytes.size()); }
  void write(std::string_view s) { write(s.data(), s.size()); }

  // Flush to disk and move over the target. After this, the target holds exactly what was written.
  void commit() {
    if (committed_ || fd_ < 0) throw_error<io_error>("write_file_atomic", "commit called twice for '", target_.string(), "'");
    if (::fsync(fd_) != 0) fail("cannot fsync '", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close '", errno);
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      const int err = errno;
      ::unlink(temp_.c_str());
      throw_error<io_error>("write_file_atomic", "cannot rename '", temp_.string(), "' to '", target_.string(),
                            "': ", detail::errno_text(err));
    }
    committed_ = true;
    sync_parent_folder();
  }

 private:
  [[noreturn]] void fail(const char* what, int err) {
    abandon();
    throw_error<io_error>("write_file_atomic", what, temp_.string(), "' (writing '", target_.string(), "'): ",
                          detail::errno_text(err));
  }
  void abandon() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!committed_) ::unlink(temp_.c_str());
  }
  // Best effort: make the rename itself durable. A failure here does not undo the (already visible) write.
  void sync_parent_folder() const noexcept {
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

inline void write_file_atomic(const std::filesystem::path& path, const void* data, std::size_t n) {
  atomic_file_writer w(path);
  w.write(data, n);
  w.commit();
}
inline void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
inline void write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  write_file_atomic(path, text.data(), text.size());
}

// The whole content of a regular file. Throws io_error naming the path if it is missing, not a
// regular file, or cannot be read completely.
inline std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
  // Checked before opening: opening a FIFO for reading would wait for a writer. O_NONBLOCK covers a
  // file replaced by one between the check and the open; fstat below checks what was opened.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw_error<io_error>("read_file_bytes", "'", path.string(), "' is not a regular file");
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    throw_error<io_error>("read_file_bytes", "cannot open '", path.string(), "': ", detail::errno_text(err));
  }
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw_error<io_error>("read_file_bytes", "cannot stat '", path.string(), "': ", detail::errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) throw_error<io_error>("read_file_bytes", "'", path.string(), "' is not a regular file");
  std::vector<std::byte> out(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    const ::ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw_error<io_error>("read_file_bytes", "cannot read '", path.string(), "': ", detail::errno_text(err));
    }
    if (r == 0) {
      throw_error<io_error>("read_file_bytes", "'", path.string(), "' shrank while reading (expected ", out.size(),
                            " bytes, got ", got, ")");
    }
    got += static_cast<std::size_t>(r);
  }
  return out;
}

inline std::string read_file_text(const std::filesystem::path& path) {
  const std::vector<std::byte> b = read_file_bytes(path);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace cpdiff::io
