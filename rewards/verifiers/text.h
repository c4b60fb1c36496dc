// Small text helpers shared by the rule-based verifiers: trimming, case folding, answer-region
// extraction (\boxed{...} with nested braces, <tag>...</tag>, "the answer is ..."), and reading
// gold answers from a sample's metadata. ASCII-only case folding; no regex on unbounded input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace keel::rewards::text {

/// Whitespace (ASCII space, \t, \n, \r, \f, \v) removed at both ends.
std::string_view trim(std::string_view s);
/// ASCII lower-case copy.
std::string lower(std::string_view s);
/// Replaces every occurrence of `from` by `to`.
std::string replace_all(std::string s, std::string_view from, std::string_view to);

/// Content of the last \boxed{...} (or \fbox{...}) with balanced nested braces; "\boxed 5" (no
/// braces) gives the next token. nullopt when there is none or its braces never close.
std::optional<std::string> last_boxed(std::string_view s);
/// Content of the last <tag>...</tag> pair (the last opening tag that has a closing tag after it).
std::optional<std::string> last_tag(std::string_view s, std::string_view tag);
/// Text after the last "answer is" / "answer:" phrase (case-insensitive: "the answer is",
/// "final answer is", "Answer:"), up to the end of its line, trimmed; nullopt when absent.
std::optional<std::string> after_answer_phrase(std::string_view s);
/// Text after the last "####" (GSM8K style), up to the end of its line.
std::optional<std::string> after_hashes(std::string_view s);
/// The last number-looking token ("-12", "3.5", "1,234", "3/4") in the text, nullopt when none.
std::optional<std::string> last_number(std::string_view s);
/// The last non-empty line, trimmed.
std::string last_line(std::string_view s);

/// The gold answers of a sample: metadata[key] as a string, a number (printed as JSON) or a list of
/// those (any one may match). Throws keel::Error when the key is missing or of another type.
std::vector<std::string> gold_answers(const nlohmann::json& meta, const std::string& key);

}  // namespace keel::rewards::text
