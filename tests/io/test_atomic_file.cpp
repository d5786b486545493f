#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpdiff/backend/cpu.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "io_test_util.hpp"

using cpdiff_io_test::temp_dir;
using Catch::Matchers::Contains;
namespace io = cpdiff::io;
namespace fs = std::filesystem;

namespace {

void write_plain(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

bool has_temp_files(const temp_dir& d) {
  for (const auto& name : d.entries())
    if (name.find(".tmp.") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("write_file_atomic creates a new file with exactly the given bytes", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "out.bin";
  std::string text = "hello";
  text.push_back('\0');
  text += "\xff world";
  io::write_file_atomic(p, std::string_view(text));
  CHECK(io::read_file_text(p) == text);
  CHECK(d.entries() == std::vector<std::string>{"out.bin"});
}

TEST_CASE("write_file_atomic replaces an existing file and handles empty content", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "out.txt";
  write_plain(p, "old content that is longer than the new one");
  io::write_file_atomic(p, std::string_view("new"));
  CHECK(io::read_file_text(p) == "new");
  io::write_file_atomic(p, std::string_view(""));
  CHECK(fs::file_size(p) == 0);
  CHECK(io::read_file_bytes(p).empty());
  CHECK_FALSE(has_temp_files(d));
}

TEST_CASE("write_file_atomic into a missing folder throws io_error naming the path", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "no_such_folder" / "out.bin";
  try {
    io::write_file_atomic(p, std::string_view("data"));
    FAIL("no exception");
  } catch (const cpdiff::io_error& e) {
    const std::string w = e.what();
    CHECK_THAT(w, Contains(p.string()));
    CHECK_THAT(w, Contains("No such file or directory"));
  }
  CHECK_FALSE(fs::exists(p));
  CHECK(d.entries().empty());
}

TEST_CASE("a failed rename leaves the target alone and removes the temporary file", "[io][atomic_file]") {
  temp_dir d;
  // The target is a non-empty folder: rename(file, folder) fails after the data was written.
  const fs::path target = d / "target";
  fs::create_directories(target);
  write_plain(target / "keep.txt", "keep");
  REQUIRE_THROWS_AS(io::write_file_atomic(target, std::string_view("data")), cpdiff::io_error);
  try {
    io::write_file_atomic(target, std::string_view("data"));
  } catch (const cpdiff::io_error& e) {
    CHECK_THAT(std::string(e.what()), Contains("cannot rename"));
    CHECK_THAT(std::string(e.what()), Contains(target.string()));
  }
  CHECK(fs::is_directory(target));
  CHECK(io::read_file_text(target / "keep.txt") == "keep");
  CHECK(d.entries() == std::vector<std::string>{"target"});
}

TEST_CASE("a failed write leaves the old target unchanged and no temporary file", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "model.bin";
  write_plain(p, "previous good content");

  // Limit file size to 1 KiB for this process so the second write fails with EFBIG.
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string big(64 * 1024, 'x');
  bool threw = false;
  std::string what;
  try {
    io::write_file_atomic(p, std::string_view(big));
  } catch (const cpdiff::io_error& e) {
    threw = true;
    what = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  CHECK(threw);
  CHECK_THAT(what, Contains("cannot write"));
  CHECK_THAT(what, Contains(p.string()));
  CHECK(io::read_file_text(p) == "previous good content");
  CHECK(d.entries() == std::vector<std::string>{"model.bin"});
}

TEST_CASE("atomic_file_writer abandoned before commit leaves nothing behind", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "state.json";
  write_plain(p, "{}");
  try {
    io::atomic_file_writer w(p);
    w.write(std::string_view("{\"partial\": "));
    CHECK(fs::exists(w.temp_path()));
    CHECK(w.temp_path().filename().string().rfind("state.json.tmp.", 0) == 0);
    throw std::runtime_error("simulated failure while serializing");
  } catch (const std::runtime_error&) {
  }
  CHECK(io::read_file_text(p) == "{}");
  CHECK(d.entries() == std::vector<std::string>{"state.json"});
}

TEST_CASE("atomic_file_writer streams several pieces and refuses a second commit", "[io][atomic_file]") {
  temp_dir d;
  const fs::path p = d / "pieces.bin";
  io::atomic_file_writer w(p);
  w.write(std::string_view("ab"));
  const std::vector<std::byte> mid = {std::byte{0}, std::byte{1}, std::byte{2}};
  w.write(std::span<const std::byte>(mid));
  w.write("cd", 2);
  CHECK_FALSE(fs::exists(p));  // nothing visible before commit
  w.commit();
  CHECK(w.committed());
  CHECK(io::read_file_text(p) == std::string("ab\0\1\2cd", 7));
  CHECK_THROWS_AS(w.commit(), cpdiff::io_error);
  CHECK_THROWS_AS(w.write("x", 1), cpdiff::io_error);
  CHECK(d.entries() == std::vector<std::string>{"pieces.bin"});
}

TEST_CASE("read_file_bytes reports missing and non-regular files by path", "[io][atomic_file]") {
  temp_dir d;
  const fs::path missing = d / "missing.safetensors";
  REQUIRE_THROWS_WITH(io::read_file_bytes(missing), Contains(missing.string()) && Contains("No such file"));
  REQUIRE_THROWS_AS(io::read_file_bytes(missing), cpdiff::io_error);
  REQUIRE_THROWS_WITH(io::read_file_bytes(d.path()), Contains("not a regular file"));
  REQUIRE_THROWS_AS(io::write_file_atomic("", std::string_view("x")), cpdiff::io_error);
}

TEST_CASE("read_file_bytes refuses a FIFO at once instead of waiting for a writer", "[io][atomic_file]") {
  temp_dir d;
  const fs::path fifo = d / "pipe.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto reading = std::async(std::launch::async, [&] { return io::read_file_bytes(fifo); });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // lets the blocked open return
    if (fd >= 0) ::close(fd);
    FAIL("read_file_bytes waited on a FIFO");
  }
  REQUIRE_THROWS_AS(reading.get(), cpdiff::io_error);
  REQUIRE_THROWS_WITH(io::read_file_bytes(fifo), Contains(fifo.string()) && Contains("not a regular file"));
}

TEST_CASE("two threads saving one target never share a temporary file", "[io][atomic_file]") {
  temp_dir d;
  const fs::path target = d / "shared.bin";
  std::atomic<int> failures{0};
  auto saver = [&](char fill) {
    const std::string text(4096, fill);
    for (int i = 0; i < 200; ++i) {
      try {
        io::write_file_atomic(target, std::string_view(text));
      } catch (const cpdiff::io_error&) {
        ++failures;
      }
    }
  };
  std::thread a(saver, 'a'), b(saver, 'b');
  a.join();
  b.join();
  CHECK(failures == 0);
  const std::string got = io::read_file_text(target);
  CHECK((got == std::string(4096, 'a') || got == std::string(4096, 'b')));
  CHECK(d.entries() == std::vector<std::string>{"shared.bin"});
}

TEST_CASE("temporary files of dead processes are found and removed, live ones kept", "[io][atomic_file]") {
  temp_dir d;
  const fs::path target = d / "ckpt.safetensors";
  // A pid that is not running: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(dead > 0);
  ::waitpid(dead, nullptr, 0);
  const std::string dead_tmp = "ckpt.safetensors.tmp." + std::to_string(dead) + ".0.00000000000000ff";
  const std::string old_style = "ckpt.safetensors.tmp." + std::to_string(dead);
  const std::string live_tmp = "ckpt.safetensors.tmp." + std::to_string(::getpid()) + ".7.0000000000000001";
  for (const auto& n : {dead_tmp, old_style, live_tmp, std::string("other.bin.tmp.1"), std::string("ckpt.safetensors")})
    write_plain(d / n, "x");
  auto names = [](std::vector<fs::path> ps) {
    std::vector<std::string> out;
    for (const auto& p : ps) out.push_back(p.filename().string());
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<std::string> orphans = {dead_tmp, old_style};
  std::sort(orphans.begin(), orphans.end());
  CHECK(names(io::orphan_temp_files(target)) == orphans);
  CHECK(names(io::remove_orphan_temp_files(target)) == orphans);
  CHECK(io::orphan_temp_files(target).empty());
  CHECK(fs::exists(d / live_tmp));
  CHECK(fs::exists(d / "other.bin.tmp.1"));
}
