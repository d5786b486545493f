#pragma once
// Errors, in tiers (DESIGN.md): public entry points throw one of these with a message that names
// the function and the shapes / fields / file involved. Nothing in the library calls exit().
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cpdiff {

struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Wrong shapes, ranks or channel counts at a public entry point.
struct shape_error : error {
  using error::error;
};
// Unreadable, truncated or corrupt files; failed writes.
struct io_error : error {
  using error::error;
};
// Bad configuration values or flags (rank 0, unknown preset, negative learning rate...).
struct config_error : error {
  using error::error;
};
// NaN / Inf where a finite number is required (the training guard).
struct numeric_error : error {
  using error::error;
};
// A failing GPU runtime or library call (thrown by the cuda backend).
struct device_error : error {
  using error::error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// throw_error<shape_error>("linear::forward", "expected ", a, " got ", b)
// -> "cpdiff: linear::forward: expected [2, 3] got [2, 4]"
template <class E, class... Args>
[[noreturn]] void throw_error(const char* where, Args&&... args) {
  throw E(detail::concat("cpdiff: ", where, ": ", std::forward<Args>(args)...));
}

}  // namespace cpdiff

// Always-on check for public entry points.
#define CPDIFF_CHECK(cond, E, where, ...)                  \
  do {                                                     \
    if (!(cond)) ::cpdiff::throw_error<E>(where, __VA_ARGS__); \
  } while (0)

// Debug-only internal invariant.
#ifndef NDEBUG
#include <cassert>
#define CPDIFF_ASSERT(cond) assert(cond)
#else
#define CPDIFF_ASSERT(cond) ((void)0)
#endif
