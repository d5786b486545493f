#pragma once
// Shared by the libFuzzer harnesses (fuzz_*.cpp) and the seed writer (make_seeds.cpp): the ways one fuzz
// input is split into several files, and a per-process scratch folder for readers that only take a path.
// Standard library and POSIX only, so that it costs nothing to compile.
//
// Split formats (all integers little-endian):
//   prefixed pair:  u32 n | n bytes (first part) | the rest (second part). n larger than what follows is
//                   clamped, so every input splits somehow.
//   archive:        records of  u8 k | k bytes file name | u32 n | n bytes content, up to the end of the input.
//                   Lengths past the end are clamped; names are made plain (no '/', no NUL, not "." or "..",
//                   not empty) and a repeated name replaces the earlier file. At most archive_max_files files.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace cpdiff_fuzz {

namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// Reading a fuzz input
// ------------------------------------------------------------------------------------------------

class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

  std::size_t left() const { return n_ - pos_; }
  bool done() const { return pos_ >= n_; }

  std::uint8_t u8() {
    if (done()) return 0;
    return p_[pos_++];
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(u8()) << (8 * i);
    return v;
  }
  // Up to n bytes (fewer at the end of the input).
  std::string_view take(std::size_t n) {
    if (n > left()) n = left();
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string_view rest() { return take(left()); }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

struct byte_pair {
  std::string_view first, second;
};

inline byte_pair split_prefixed(const std::uint8_t* data, std::size_t size) {
  byte_reader r(data, size);
  const std::uint32_t n = r.u32();
  byte_pair p;
  p.first = r.take(n);
  p.second = r.rest();
  return p;
}

inline constexpr std::size_t archive_max_files = 16;
inline constexpr std::size_t archive_max_name = 64;

struct archive_file {
  std::string name;
  std::string_view content;
};

// A name that is safe to create inside the scratch folder.
inline std::string plain_name(std::string_view raw) {
  std::string s;
  for (char c : raw) {
    if (s.size() >= archive_max_name) break;
    s += (c == '/' || c == '\0') ? '_' : c;
  }
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

inline std::vector<archive_file> split_archive(const std::uint8_t* data, std::size_t size) {
  byte_reader r(data, size);
  std::vector<archive_file> files;
  while (!r.done() && files.size() < archive_max_files) {
    const std::size_t k = r.u8();
    std::string name = plain_name(r.take(k));
    const std::uint32_t n = r.u32();
    const std::string_view content = r.take(n);
    bool replaced = false;
    for (auto& f : files) {
      if (f.name == name) {
        f.content = content;
        replaced = true;
      }
    }
    if (!replaced) files.push_back({std::move(name), content});
  }
  return files;
}

// ------------------------------------------------------------------------------------------------
// Building a fuzz input (make_seeds, regression inputs)
// ------------------------------------------------------------------------------------------------

inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFFu);
}

inline std::string join_prefixed(std::string_view first, std::string_view second) {
  std::string out;
  put_u32(out, static_cast<std::uint32_t>(first.size()));
  out.append(first);
  out.append(second);
  return out;
}

inline void put_archive_file(std::string& out, std::string_view name, std::string_view content) {
  out += static_cast<char>(static_cast<std::uint8_t>(name.size()));
  out.append(name);
  put_u32(out, static_cast<std::uint32_t>(content.size()));
  out.append(content);
}

// ------------------------------------------------------------------------------------------------
// Diagnostics
// ------------------------------------------------------------------------------------------------

// With CPDIFF_FUZZ_VERBOSE=1 in the environment, a harness prints why the library refused an input (to check
// that seeds and regression inputs get where they should). Silent otherwise: fuzzing refuses most inputs.
inline void refused(const char* what, const std::exception& e) {
  static const bool verbose = [] {
    const char* v = std::getenv("CPDIFF_FUZZ_VERBOSE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  if (verbose) std::fprintf(stderr, "refused by %s: %s\n", what, e.what());
}
inline void accepted(const char* what) {
  static const bool verbose = [] {
    const char* v = std::getenv("CPDIFF_FUZZ_VERBOSE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  if (verbose) std::fprintf(stderr, "accepted by %s\n", what);
}

// ------------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------------

// Writes bytes to path, replacing it; false on any failure (the harness then skips the input).
// The old file is unlinked first: truncating a file that has data makes ext4 flush it on close
// (auto_da_alloc), which cut a harness to a few hundred executions a second.
inline bool write_bytes(const fs::path& path, std::string_view bytes) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  bool ok = true;
  while (done < bytes.size()) {
    const ::ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(w);
  }
  ::close(fd);
  return ok;
}

inline std::string read_bytes(const fs::path& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[1 << 14];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
  std::fclose(f);
  return out;
}

// One scratch folder per process (libFuzzer's -jobs / -fork run several), emptied before each input and
// removed at exit.
class scratch_dir {
 public:
  explicit scratch_dir(const char* tag) {
    const char* base = std::getenv("CPDIFF_FUZZ_TMP");
    const fs::path root = base != nullptr && *base != '\0' ? fs::path(base) : fs::path("/tmp");
    path_ = root / ("cpdiff_fuzz_" + std::string(tag) + "_" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_, ec);
    if (ec) {
      std::fprintf(stderr, "fuzz: cannot create the scratch folder %s: %s\n", path_.c_str(), ec.message().c_str());
      std::abort();
    }
    registered() = path_;
    std::atexit([] {
      std::error_code e;
      fs::remove_all(registered(), e);
    });
  }
  const fs::path& path() const { return path_; }
  // Removes everything inside (the folder itself stays).
  void clear() const {
    std::error_code ec;
    std::vector<fs::path> inside;
    for (const auto& e : fs::directory_iterator(path_, ec)) inside.push_back(e.path());
    for (const auto& p : inside) fs::remove_all(p, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static fs::path& registered() {
    static fs::path p;
    return p;
  }
  fs::path path_;
};

// Runs the checks on what `what` accepted: any exception from them is a finding (printed, then a trap).
template <class Checks>
void checks_of_accepted(const char* what, Checks&& checks) {
  try {
    checks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: what %s accepted throws on use: %s\n", what, e.what());
    __builtin_trap();
  }
}

// The body of a harness for a reader of folders: the input is an archive, written into `dir`; load(path) reads
// it (a std::exception is a refusal), and what it accepted must then be usable: use(value) throwing is a finding.
template <class Load, class Use>
int fuzz_folder_reader(const scratch_dir& dir, const std::uint8_t* data, std::size_t size, const char* what,
                       Load&& load, Use&& use) {
  dir.clear();
  for (const auto& f : split_archive(data, size))
    if (!write_bytes(dir / f.name, f.content)) return 0;
  std::optional<decltype(load(dir.path()))> loaded;
  try {
    loaded.emplace(load(dir.path()));
    accepted(what);
  } catch (const std::exception& e) {
    refused(what, e);
    return 0;
  }
  checks_of_accepted(what, [&] { use(*loaded); });
  return 0;
}

}  // namespace cpdiff_fuzz
