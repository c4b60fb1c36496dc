// Math answer extraction / normalisation / equivalence (see math_answer.h).
#include "rewards/verifiers/math_answer.h"

#include <cctype>
#include <vector>

#include "rewards/verifiers/text.h"

namespace keel::rewards {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

/// Unwraps \cmd{...} (keeping the content) for every occurrence of cmd.
std::string unwrap_command(std::string s, std::string_view cmd) {
  const std::string open = std::string(cmd) + "{";
  size_t pos = 0;
  while ((pos = s.find(open, pos)) != std::string::npos) {
    int depth = 0;
    size_t end = std::string::npos;
    for (size_t j = pos + open.size() - 1; j < s.size(); ++j) {
      if (s[j] == '{') ++depth;
      else if (s[j] == '}' && --depth == 0) { end = j; break; }
    }
    if (end == std::string::npos) break;
    s = s.substr(0, pos) + s.substr(pos + open.size(), end - pos - open.size()) + s.substr(end + 1);
  }
  return s;
}

/// Whether s[0] == '{' and its matching '}' is the last character.
bool wrapped_in_braces(const std::string& s) {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return false;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) return i + 1 == s.size();
  }
  return false;
}

/// Splits at commas outside (), [], {}; one part when there is no such comma.
std::vector<std::string> split_top_level(const std::string& s) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (c == ',' && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

/// "1,234,567.5" -> "1234567.5" when the commas are proper thousands groups; else unchanged.
std::string drop_thousands(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  const size_t lead = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == lead || i - lead > 3 || i >= s.size() || s[i] != ',') return s;
  std::string out = s.substr(0, i);
  while (i < s.size() && s[i] == ',') {
    if (i + 3 >= s.size() || !is_digit(s[i + 1]) || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) return s;
    out += s.substr(i + 1, 3);
    i += 4;
  }
  if (i < s.size() && is_digit(s[i])) return s;  // ",1234"
  if (i < s.size() && s[i] == '.') {
    out += s.substr(i);
    for (size_t k = i + 1; k < s.size(); ++k)
      if (!is_digit(s[k])) return s;
    return out;
  }
  return i == s.size() ? out : s;
}

/// Reads one \frac argument at s[i]: "{...}" or a single character. Advances i.
std::optional<std::string> frac_arg(const std::string& s, size_t& i) {
  if (i >= s.size()) return std::nullopt;
  if (s[i] != '{') return std::string(1, s[i++]);
  int depth = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] == '{') ++depth;
    else if (s[j] == '}' && --depth == 0) {
      std::string arg = s.substr(i + 1, j - i - 1);
      i = j + 1;
      return arg;
    }
  }
  return std::nullopt;
}

std::optional<Rational> parse_plain_number(const std::string& s, int depth);

/// "\frac{a}{b}" with an optional sign in front, a and b themselves numbers.
std::optional<Rational> parse_frac(const std::string& s, int depth) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (s.compare(i, 5, "\\frac") != 0) return std::nullopt;
  i += 5;
  auto a = frac_arg(s, i);
  auto b = frac_arg(s, i);
  if (!a || !b || i != s.size()) return std::nullopt;
  auto na = parse_plain_number(*a, depth + 1);
  auto nb = parse_plain_number(*b, depth + 1);
  if (!na || !nb) return std::nullopt;
  auto q = na->div(*nb);
  if (!q) return std::nullopt;
  return neg ? q->neg() : q;
}

std::optional<Rational> parse_plain_number(const std::string& s, int depth) {
  if (depth > 8 || s.empty()) return std::nullopt;
  if (s.find("\\frac") != std::string::npos) return parse_frac(s, depth);
  std::string t = s;
  if (wrapped_in_braces(t)) t = t.substr(1, t.size() - 2);
  return Rational::parse(drop_thousands(t));
}

bool only_letters(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_alpha(c)) return false;
  return true;
}

bool equal_impl(const std::string& p, const std::string& g, int depth);

}  // namespace

std::optional<std::string> extract_math_answer(std::string_view response) {
  if (auto b = text::last_boxed(response)) return b;
  if (auto t = text::last_tag(response, "answer")) {
    // "<answer>\boxed{5}</answer>" was caught above; plain content otherwise.
    if (!text::trim(*t).empty()) return std::string(text::trim(*t));
  }
  if (auto a = text::after_answer_phrase(response)) return a;
  if (auto h = text::after_hashes(response)) return h;
  return text::last_number(response);
}

std::string normalize_math_answer(std::string_view answer) {
  std::string s(text::trim(answer));
  if (auto b = text::last_boxed(s)) s = *b;  // a gold answer written as \boxed{...}
  // Math-mode delimiters.
  for (auto [open, close] : {std::pair<std::string_view, std::string_view>{"\\(", "\\)"}, {"\\[", "\\]"}, {"$$", "$$"}, {"$", "$"}}) {
    const std::string_view t = text::trim(s);
    if (t.size() >= open.size() + close.size() && t.substr(0, open.size()) == open &&
        t.substr(t.size() - close.size()) == close) {
      s = std::string(t.substr(open.size(), t.size() - open.size() - close.size()));
      break;
    }
  }
  s = text::replace_all(std::move(s), "\xE2\x88\x92", "-");  // U+2212 minus sign
  s = text::replace_all(std::move(s), "\xC2\xB0", "");       // degree sign
  s = text::replace_all(std::move(s), "^\\circ", "");
  s = text::replace_all(std::move(s), "^{\\circ}", "");
  for (std::string_view sp : {"\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\$", "$"})
    s = text::replace_all(std::move(s), sp, "");
  s = text::replace_all(std::move(s), "{,}", ",");
  s = text::replace_all(std::move(s), "\\dfrac", "\\frac");
  s = text::replace_all(std::move(s), "\\tfrac", "\\frac");
  s = text::replace_all(std::move(s), "\\%", "%");
  for (std::string_view cmd : {"\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox"}) s = unwrap_command(std::move(s), cmd);
  std::string compact;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  while (!compact.empty() && compact.back() == '.') compact.pop_back();
  while (wrapped_in_braces(compact)) compact = compact.substr(1, compact.size() - 2);
  // "x=5" -> "5" when the left side is a single variable name. [interp]
  const size_t eq = compact.find('=');
  if (eq != std::string::npos && eq > 0 && compact.find('=', eq + 1) == std::string::npos &&
      only_letters(compact.substr(0, eq)) && eq <= 3)
    compact = compact.substr(eq + 1);
  return compact;
}

std::optional<MathNumber> parse_math_number(std::string_view normalized) {
  std::string s(normalized);
  MathNumber m;
  if (!s.empty() && s.back() == '%') {
    m.percent = true;
    s.pop_back();
  }
  auto v = parse_plain_number(s, 0);
  if (!v && !m.percent) {
    // A number followed by a unit word of >= 2 letters ("5cm", "12dollars"). [interp]
    size_t k = s.size();
    while (k > 0 && is_alpha(s[k - 1])) --k;
    if (k > 0 && s.size() - k >= 2) v = parse_plain_number(s.substr(0, k), 0);
  }
  if (!v) return std::nullopt;
  m.value = *v;
  return m;
}

namespace {

bool numbers_equal(const MathNumber& a, const MathNumber& b) {
  if (a.value == b.value) return true;
  if (a.percent == b.percent) return false;
  const MathNumber& pct = a.percent ? a : b;
  const MathNumber& plain = a.percent ? b : a;
  auto hundred = Rational::make(100);
  auto frac = pct.value.div(*hundred);
  return frac && *frac == plain.value;
}

bool equal_impl(const std::string& p, const std::string& g, int depth) {
  if (depth > 4) return p == g;
  if (p == g) return !p.empty();
  if (p.empty() || g.empty()) return false;
  auto np = parse_math_number(p);
  auto ng = parse_math_number(g);
  if (np && ng) return numbers_equal(*np, *ng);
  if (np || ng) return false;
  // Same-bracket tuples / intervals: compare the inside element-wise.
  if (p.size() >= 2 && g.size() >= 2 && p.front() == g.front() && p.back() == g.back() &&
      std::string("([").find(p.front()) != std::string::npos && std::string(")]").find(p.back()) != std::string::npos)
    return equal_impl(p.substr(1, p.size() - 2), g.substr(1, g.size() - 2), depth + 1);
  const auto pp = split_top_level(p);
  const auto gg = split_top_level(g);
  if (pp.size() > 1 && pp.size() == gg.size()) {
    for (size_t i = 0; i < pp.size(); ++i)
      if (!equal_impl(pp[i], gg[i], depth + 1)) return false;
    return true;
  }
  if (only_letters(p) && only_letters(g)) return text::lower(p) == text::lower(g);
  return false;
}

}  // namespace

bool math_answers_equal(std::string_view predicted, std::string_view gold) {
  return equal_impl(normalize_math_answer(predicted), normalize_math_answer(gold), 0);
}

}  // namespace keel::rewards
