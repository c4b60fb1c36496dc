// Math final-answer extraction and equivalence (the math_answer verifier).
//
// Extraction, first that applies: the last \boxed{...} (nested braces), the last <answer>...</answer>,
// the text after the last "answer is" / "answer:", after "####", else the last number in the text.
// Equivalence: both sides are normalised (LaTeX spacing, \left/\right, \dfrac/\tfrac, \text{},
// degree signs, $...$, trailing period, "x = ..." prefix) and, when both read as numbers, compared
// exactly as rationals: integers, decimals (trailing zeros), fractions a/b, \frac{a}{b} / \frac12,
// signs (also U+2212), thousands separators (1,234 and 1{,}234), percentages. Non-numbers compare as
// normalised strings; comma lists and same-bracket tuples compare element by element.
//
// Not a CAS: no symbolic simplification (x+1 vs 1+x, \sqrt{8} vs 2\sqrt{2} are different), no
// scientific notation, no mixed numbers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rewards/verifiers/rational.h"

namespace keel::rewards {

/// The answer region of a response (see above); nullopt when nothing answer-like is found.
std::optional<std::string> extract_math_answer(std::string_view response);

/// The normalised form used for comparison ("\dfrac{1}{2}" -> "\frac{1}{2}", "$ 5 $." -> "5").
std::string normalize_math_answer(std::string_view answer);

struct MathNumber {
  Rational value;
  bool percent = false;  ///< written with % (value holds the number before the % sign)
};
/// Reads a normalised answer as a number; nullopt when it is not one.
std::optional<MathNumber> parse_math_number(std::string_view normalized);

/// Whether a predicted answer equals a gold answer. [interp] A percentage equals both its number
/// and its fraction: "50%" == "50" == "0.5" == "1/2"; gold answers rarely say which is meant.
bool math_answers_equal(std::string_view predicted, std::string_view gold);

}  // namespace keel::rewards
