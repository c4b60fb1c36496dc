// Text helpers for the verifiers (see text.h). Hand-written scanners, linear in the input.
#include "rewards/verifiers/text.h"

#include <cctype>

#include "base/error.h"

namespace keel::rewards::text {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

/// Case-insensitive search for the last occurrence of `needle` (ASCII lower-case) in `hay`.
size_t rfind_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = hay.size() - needle.size() + 1; i-- > 0;) {
    bool ok = true;
    for (size_t k = 0; k < needle.size() && ok; ++k)
      ok = std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k];
    if (ok) return i;
  }
  return std::string_view::npos;
}

std::string_view rest_of_line(std::string_view s, size_t from) {
  const size_t end = s.find('\n', from);
  return s.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from);
}

}  // namespace

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::optional<std::string> last_boxed(std::string_view s) {
  size_t best = std::string_view::npos;
  size_t cmd_len = 0;
  for (std::string_view cmd : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    const size_t p = s.rfind(cmd);
    if (p != std::string_view::npos && (best == std::string_view::npos || p > best)) {
      best = p;
      cmd_len = cmd.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t i = best + cmd_len;
  if (i < s.size() && s[i] == '{') {
    int depth = 0;
    for (size_t j = i; j < s.size(); ++j) {
      if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == '{' || s[j + 1] == '}')) { ++j; continue; }  // \{ \}
      if (s[j] == '{') ++depth;
      else if (s[j] == '}' && --depth == 0) return std::string(s.substr(i + 1, j - i - 1));
    }
    return std::nullopt;  // unbalanced
  }
  // "\boxed 5" / "\boxed{" missing: the next whitespace-delimited token.
  if (i >= s.size() || !is_space(s[i])) return std::nullopt;
  while (i < s.size() && is_space(s[i])) ++i;
  size_t j = i;
  while (j < s.size() && !is_space(s[j]) && s[j] != '$') ++j;
  if (j == i) return std::nullopt;
  return std::string(s.substr(i, j - i));
}

std::optional<std::string> last_tag(std::string_view s, std::string_view tag) {
  std::string open = "<", close = "</";  // appended, not operator+: GCC 12 false -Wstringop-overflow
  open.append(tag).push_back('>');
  close.append(tag).push_back('>');
  const size_t c = s.rfind(close);
  if (c == std::string_view::npos) return std::nullopt;
  const size_t o = s.substr(0, c).rfind(open);
  if (o == std::string_view::npos) return std::nullopt;
  return std::string(s.substr(o + open.size(), c - o - open.size()));
}

std::optional<std::string> after_answer_phrase(std::string_view s) {
  size_t best = std::string_view::npos, len = 0;
  for (std::string_view p : {std::string_view("answer is"), std::string_view("answer:")}) {
    const size_t at = rfind_ci(s, p);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) {
      best = at;
      len = p.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(rest_of_line(s, best + len));
  if (!rest.empty() && rest.front() == ':') rest = trim(rest.substr(1));
  // "... is 42. Then ..." -> "42": cut at a sentence end (". " or final '.') outside braces / $.
  int depth = 0;
  bool in_dollar = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '{') ++depth;
    else if (c == '}') --depth;
    else if (c == '$') in_dollar = !in_dollar;
    else if (c == '.' && depth == 0 && !in_dollar && (i + 1 == rest.size() || is_space(rest[i + 1]))) {
      rest = rest.substr(0, i);
      break;
    }
  }
  rest = trim(rest);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

std::optional<std::string> after_hashes(std::string_view s) {
  const size_t at = s.rfind("####");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(rest_of_line(s, at + 4));
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

std::optional<std::string> last_number(std::string_view s) {
  std::optional<std::string> last;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i]) || (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ','))) {
      ++i;
      continue;
    }
    const size_t start = (i > 0 && s[i - 1] == '-' && (i < 2 || !is_alnum(s[i - 2]))) ? i - 1 : i;
    size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    // thousands groups: ",ddd" repeated, only when the leading run has 1..3 digits
    if (j - i <= 3) {
      size_t k = j;
      while (k + 3 < s.size() && s[k] == ',' && is_digit(s[k + 1]) && is_digit(s[k + 2]) && is_digit(s[k + 3]) &&
             (k + 4 >= s.size() || !is_digit(s[k + 4])))
        k += 4;
      j = k;
    }
    if (j + 1 < s.size() && s[j] == '.' && is_digit(s[j + 1])) {
      j += 1;
      while (j < s.size() && is_digit(s[j])) ++j;
    } else if (j + 1 < s.size() && s[j] == '/' && is_digit(s[j + 1])) {
      j += 1;
      while (j < s.size() && is_digit(s[j])) ++j;
    }
    last = std::string(s.substr(start, j - start));
    i = j;
  }
  return last;
}

std::string last_line(std::string_view s) {
  s = trim(s);
  const size_t nl = s.rfind('\n');
  return std::string(trim(nl == std::string_view::npos ? s : s.substr(nl + 1)));
}

std::vector<std::string> gold_answers(const nlohmann::json& meta, const std::string& key) {
  if (!meta.is_object() || !meta.contains(key))
    fail("sample metadata has no '{}' field (the verifier's answer_key)", key);
  const nlohmann::json& v = meta.at(key);
  auto one = [&](const nlohmann::json& x) -> std::string {
    if (x.is_string()) return x.get<std::string>();
    if (x.is_number()) return x.dump();
    fail("metadata '{}' must be a string, a number or a list of those, got {}", key, x.type_name());
  };
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& x : v) out.push_back(one(x));
    if (out.empty()) fail("metadata '{}' is an empty list", key);
  } else {
    out.push_back(one(v));
  }
  return out;
}

}  // namespace keel::rewards::text
