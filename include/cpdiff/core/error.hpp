#pragma once
// Errors, in tiers (DESIGN.md): public entry points throw one of these with a message that names
// the function and the shapes / fields / file involved. Nothing in the library calls exit().
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace cpdiff {

// Every cpdiff error. An error raised inside a model's member also says which member, named as its
// parameters are ("encoder.3.4", PyTorch's module path): sequential and the models call at_member() as the
// error passes out, and the innermost name (the most exact one) is kept.
//   "cpdiff: nn::conv1d::forward: ..."  ->  "cpdiff: encoder.3.4: nn::conv1d::forward: ..."
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what), what_(what) {}
  const char* what() const noexcept override { return what_.c_str(); }
  // The member the error was raised in, or "" when it was raised outside any named member.
  const std::string& member() const noexcept { return member_; }
  void at_member(std::string_view path) {
    if (!member_.empty() || path.empty()) return;
    member_ = path;
    constexpr std::string_view tag = "cpdiff: ";
    const std::size_t at = what_.starts_with(tag) ? tag.size() : 0;
    what_.insert(at, member_ + ": ");
  }

 private:
  std::string what_, member_;
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
