#pragma once
// Whole-file I/O with atomic replacement.
//
// atomic_file_writer writes to "<target>.tmp.<pid>" in the target's folder, and commit() flushes,
// fsyncs, closes and renames the temporary file over the target. If anything fails, or the writer is
// destroyed without commit(), the temporary file is removed and the target is left untouched.
// Failures throw cpdiff::io_error naming the path and the system's reason (errno text).
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpdiff/core/error.hpp"

namespace cpdiff::io {

namespace detail {
inline std::string errno_text(int err) { return std::strerror(err); }
}  // namespace detail

class atomic_file_writer {
 public:
  explicit atomic_file_writer(std::filesystem::path target)
      : target_(std::move(target)),
        temp_(target_.string() + ".tmp." + std::to_string(static_cast<long long>(::getpid()))) {
    if (target_.empty()) throw_error<io_error>("write_file_atomic", "empty path");
    do {
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    } while (fd_ < 0 && errno == EINTR);
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
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
