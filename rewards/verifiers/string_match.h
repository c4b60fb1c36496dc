// String-answer verifiers: exact match, normalised (SQuAD-style) match and multiple-choice letters.
// Not for numbers (use math_answer) and not fuzzy (no edit distance, no F1 partial credit).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::rewards {

/// Which part of a response is the answer.
enum class AnswerRegion {
  kWhole,      ///< the whole response, trimmed
  kBoxed,      ///< the last \boxed{...}
  kAnswerTag,  ///< the last <answer>...</answer>
  kLastLine,   ///< the last non-empty line
  kAuto,       ///< \boxed, else <answer>, else "answer is ...", else the whole response
};
/// "whole" | "boxed" | "answer_tag" | "last_line" | "auto" (the YAML spellings).
std::optional<AnswerRegion> parse_answer_region(std::string_view name);
/// The answer text of `response` (trimmed); nullopt when the region is absent.
std::optional<std::string> answer_region(std::string_view response, AnswerRegion region);

/// SQuAD normalisation: ASCII lower-case, punctuation removed, articles a/an/the removed,
/// whitespace collapsed to single spaces. "The  Eiffel-Tower!" -> "eiffeltower".
std::string normalize_text_answer(std::string_view s);

/// The letter a multiple-choice response commits to, among `letters` (e.g. "ABCD"). Looks, in
/// order, at \boxed{}, <answer>, "answer is ...", then the last line; accepts "B", "(B)", "B)",
/// "B.", "**B**", "B) text", "\text{B}" and, when `choice_texts` is given, the text of a choice.
/// Deliberately does not scan the whole response for "(B)" (that rewards listing every option).
std::optional<char> extract_choice_letter(std::string_view response, std::string_view letters,
                                          const std::vector<std::string>& choice_texts = {});

}  // namespace keel::rewards
