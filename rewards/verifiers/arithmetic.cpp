// Integer-answer verifier for the arithmetic task (see arithmetic.h).
#include "rewards/verifiers/arithmetic.h"

#include <cctype>
#include <vector>

#include "rewards/verifiers/text.h"

namespace keel::rewards {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::optional<std::string> canonical_integer(std::string_view raw) {
  std::string s(text::trim(raw));  // inner spaces are not removed: "4 2" is not 42
  s = text::replace_all(std::move(s), "\xE2\x88\x92", "-");
  s = text::replace_all(std::move(s), "{,}", ",");
  s = text::replace_all(std::move(s), "\\,", "");
  s = text::replace_all(std::move(s), "$", "");
  while (!s.empty() && s.back() == '.') s.pop_back();  // sentence period
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  std::string digits;
  const size_t lead = i;
  while (i < s.size() && is_digit(s[i])) digits.push_back(s[i++]);
  if (digits.empty()) return std::nullopt;
  if (i < s.size() && s[i] == ',') {  // thousands groups
    if (i - lead > 3) return std::nullopt;
    while (i < s.size() && s[i] == ',') {
      if (i + 4 > s.size() || !is_digit(s[i + 1]) || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) return std::nullopt;
      digits.append(s, i + 1, 3);
      i += 4;
      if (i < s.size() && is_digit(s[i])) return std::nullopt;
    }
  }
  if (i < s.size() && s[i] == '.') {  // "12.000" is an integer, "12.5" is not
    ++i;
    if (i == s.size()) return std::nullopt;
    for (; i < s.size(); ++i)
      if (s[i] != '0') return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const size_t nz = digits.find_first_not_of('0');
  if (nz == std::string::npos) return std::string("0");
  std::string out = neg ? "-" : "";  // (appending, not operator+: silences a GCC 12 false -Wstringop-overflow)
  out.append(digits, nz, std::string::npos);
  return out;
}

std::optional<std::string> extract_integer_answer(std::string_view response) {
  std::vector<std::optional<std::string>> regions = {text::last_tag(response, "answer"), text::last_boxed(response),
                                                     text::after_answer_phrase(response), text::after_hashes(response)};
  for (const auto& r : regions) {
    if (!r) continue;
    if (auto v = canonical_integer(*r)) return v;
    // "x = 42", "42 apples": the region's only number.
    auto n = text::last_number(*r);
    if (n) {
      const size_t at = r->rfind(*n), after = at + n->size();
      const bool attached = after < r->size() && (std::isalnum(static_cast<unsigned char>((*r)[after])) || (*r)[after] == '%');
      const bool only = text::last_number(std::string_view(*r).substr(0, at)) == std::nullopt;
      if (only && !attached) return canonical_integer(*n);  // "1e100" and "42%" are not integers
    }
    return std::nullopt;  // a committed answer region that is not one integer: no fallback to other text
  }
  if (auto n = text::last_number(response)) return canonical_integer(*n);
  return std::nullopt;
}

}  // namespace keel::rewards
