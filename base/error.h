// keel's user-facing error type. Thrown for bad input (files, config, data); the CLI catches it,
// prints the message and exits non-zero. Internal invariants use TORCH_CHECK / assert instead.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace keel {

/// An error caused by the user's input. what() is a complete, LLVM-style message (lower-case
/// start, no trailing period) that already names the file / line / YAML path involved.
class Error : public std::runtime_error {
 public:
  explicit Error(std::string msg) : std::runtime_error(std::move(msg)) {}
};

/// Throws keel::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace keel
