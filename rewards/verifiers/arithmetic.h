// Verifier of the built-in multi-digit arithmetic task: the answer is an integer.
// The answer region is, first that applies, <answer>...</answer>, \boxed{}, "answer is ...", "####",
// else the last number in the response. Integers of any length compare as digit strings (no
// overflow); "1,234", "+12", "−7" (U+2212) and "12.0" / "12.000" are read as integers, "12.5" is not.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace keel::rewards {

/// Canonical integer text ("-1234", "0") of `s`, or nullopt when `s` is not an integer.
std::optional<std::string> canonical_integer(std::string_view s);

/// The integer a response commits to (canonical form), or nullopt.
std::optional<std::string> extract_integer_answer(std::string_view response);

}  // namespace keel::rewards
