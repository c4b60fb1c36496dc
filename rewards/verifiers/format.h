// Format verifiers: a user regex over the response, and the <think>...</think><answer>...</answer>
// tag structure of R1-style reasoning responses. They check shape only, never correctness.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace keel::rewards {

struct TagFormatOptions {
  std::string think_tag = "think";    ///< name of the reasoning tag
  std::string answer_tag = "answer";  ///< name of the answer tag
  bool require_think = true;          ///< false: the <think> block may be absent (answer only)
  bool allow_outside = false;         ///< true: text before the first / after the last tag is allowed
};

/// True when the response is exactly `<think>R</think> <answer>A</answer>` (whitespace around and
/// between the blocks allowed): each tag once, in that order, R and A non-empty after trimming,
/// no tags nested inside either block, nothing else outside unless allow_outside.
bool check_tag_format(std::string_view response, const TagFormatOptions& opt);

/// A compiled regex for format_regex. Uses the libstdc++ Thompson-NFA executor (no backtracking,
/// so no stack overflow on long inputs); hence no back-references in patterns.
class FormatRegex {
 public:
  /// Throws std::regex_error (caught by the factory) on a bad pattern.
  FormatRegex(const std::string& pattern, bool full_match);
  ~FormatRegex();
  bool matches(std::string_view text) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  bool full_;
};

}  // namespace keel::rewards
