// Verifier of the built-in Countdown task: combine the given numbers with + - * / and parentheses
// to reach the target. The expression is read by a small recursive-descent parser (no eval) and
// evaluated exactly with rationals, so 6/(1-3/4) = 24 is exact and 7/2*2 = 7 is accepted.
//
// Rules: only non-negative integer literals, binary + - * / (also × ÷ \times \div \cdot) and
// parentheses; no unary minus, no implicit multiplication, no decimals, no exponent; each literal
// must be one of the given numbers, each given number used at most once, or exactly once when
// use_all (the multiset of literals equals the given multiset). Division by zero makes the
// expression invalid. Nesting deeper than 64 or text longer than 1000 characters is invalid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/verifiers/rational.h"

namespace keel::rewards {

enum class CountdownVerdict {
  kCorrect,      ///< valid expression, numbers used as required, value == target
  kWrongValue,   ///< valid expression and numbers, value != target
  kBadNumbers,   ///< uses a number not given, or more often than given, or (use_all) not all of them
  kInvalid,      ///< not an expression under the rules above (or division by zero)
  kNoAnswer,     ///< no answer region found
};

struct CountdownResult {
  CountdownVerdict verdict = CountdownVerdict::kNoAnswer;
  std::string expression;          ///< the expression text that was judged
  std::optional<Rational> value;   ///< its value when valid
};

/// Parses and evaluates an expression; nullopt (and `error` set when given) when invalid.
/// `literals` receives the integer literals in order of appearance.
std::optional<Rational> eval_countdown_expression(std::string_view expr, std::vector<int64_t>* literals,
                                                  std::string* error = nullptr);

/// The expression of a response: the last <answer>...</answer>, else the last \boxed{}, else the last
/// non-empty line; "$", "\(", "\)" removed; of "E = 24" or "24 = E" the side E that is not a bare number.
std::string extract_countdown_expression(std::string_view response);

/// Judges a response against the task.
CountdownResult check_countdown(std::string_view response, const std::vector<int64_t>& numbers, int64_t target,
                                bool use_all);

}  // namespace keel::rewards
