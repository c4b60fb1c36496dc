// String-answer verifiers (see string_match.h).
#include "rewards/verifiers/string_match.h"

#include <cctype>

#include "rewards/verifiers/text.h"

namespace keel::rewards {

std::optional<AnswerRegion> parse_answer_region(std::string_view name) {
  if (name == "whole") return AnswerRegion::kWhole;
  if (name == "boxed") return AnswerRegion::kBoxed;
  if (name == "answer_tag") return AnswerRegion::kAnswerTag;
  if (name == "last_line") return AnswerRegion::kLastLine;
  if (name == "auto") return AnswerRegion::kAuto;
  return std::nullopt;
}

std::optional<std::string> answer_region(std::string_view response, AnswerRegion region) {
  auto trimmed = [](const std::optional<std::string>& s) -> std::optional<std::string> {
    if (!s) return std::nullopt;
    return std::string(text::trim(*s));
  };
  switch (region) {
    case AnswerRegion::kWhole: return std::string(text::trim(response));
    case AnswerRegion::kBoxed: return trimmed(text::last_boxed(response));
    case AnswerRegion::kAnswerTag: return trimmed(text::last_tag(response, "answer"));
    case AnswerRegion::kLastLine: return text::last_line(response);
    case AnswerRegion::kAuto:
      if (auto b = text::last_boxed(response)) return trimmed(b);
      if (auto t = text::last_tag(response, "answer")) return trimmed(t);
      if (auto a = text::after_answer_phrase(response)) return trimmed(a);
      return std::string(text::trim(response));
  }
  return std::nullopt;
}

std::string normalize_text_answer(std::string_view s) {
  std::string no_punct;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::ispunct(u)) continue;
    no_punct.push_back(static_cast<char>(std::tolower(u)));
  }
  std::string out;
  size_t i = 0;
  while (i < no_punct.size()) {
    while (i < no_punct.size() && std::isspace(static_cast<unsigned char>(no_punct[i]))) ++i;
    size_t j = i;
    while (j < no_punct.size() && !std::isspace(static_cast<unsigned char>(no_punct[j]))) ++j;
    if (j > i) {
      const std::string_view w(no_punct.data() + i, j - i);
      if (w != "a" && w != "an" && w != "the") {
        if (!out.empty()) out.push_back(' ');
        out.append(w);
      }
    }
    i = j;
  }
  return out;
}

namespace {

/// A letter from a short candidate: "B", "(B)", "B)", "B.", "B:", "**B**", "\text{B}", "B) text", "(B) text".
std::optional<char> letter_of(std::string_view cand, std::string_view letters) {
  std::string s(text::trim(cand));
  s = text::replace_all(std::move(s), "\\text{", "{");
  s = text::replace_all(std::move(s), "\\textbf{", "{");
  std::string t;
  for (char c : s)
    if (c != '*' && c != '{' && c != '}' && c != '$') t.push_back(c);
  std::string_view v = text::trim(t);
  if (v.empty()) return std::nullopt;
  bool paren = false;
  if (v.front() == '(' || v.front() == '[') {
    paren = true;
    v.remove_prefix(1);
  }
  if (v.empty()) return std::nullopt;
  const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(v.front())));
  // Lower-case letters only count when marked ("(b)", "b)"), so the article "a" is not an answer.
  const bool upper = v.front() == c;
  if (letters.find(c) == std::string_view::npos) return std::nullopt;
  std::string_view rest = v.substr(1);
  if (rest.empty()) return (upper || paren) ? std::optional<char>(c) : std::nullopt;
  // Hedging ("(B) or (C)", "B) ... C)"): another marked letter in the rest makes it no answer.
  for (size_t k = 0; k + 1 < rest.size(); ++k) {
    const char l = static_cast<char>(std::toupper(static_cast<unsigned char>(rest[k])));
    const bool marked = rest[k + 1] == ')' && (k == 0 || rest[k - 1] == '(' || rest[k - 1] == ' ');
    if (marked && l != c && letters.find(l) != std::string_view::npos) return std::nullopt;
  }
  const char next = rest.front();
  if (paren && (next == ')' || next == ']')) return c;
  if (next == ')' || next == '.' || next == ':') {
    // "B." alone, or "B) text" / "B. text" / "B: text".
    return (upper || next == ')') ? std::optional<char>(c) : std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<char> extract_choice_letter(std::string_view response, std::string_view letters,
                                          const std::vector<std::string>& choice_texts) {
  std::vector<std::string> candidates;
  if (auto b = text::last_boxed(response)) candidates.push_back(*b);
  if (auto t = text::last_tag(response, "answer")) candidates.push_back(*t);
  if (auto a = text::after_answer_phrase(response)) candidates.push_back(*a);
  candidates.push_back(text::last_line(response));
  for (const auto& cand : candidates) {
    if (auto l = letter_of(cand, letters)) return l;
    if (!choice_texts.empty()) {
      const std::string n = normalize_text_answer(cand);
      for (size_t k = 0; k < choice_texts.size() && k < letters.size(); ++k)
        if (!n.empty() && n == normalize_text_answer(choice_texts[k])) return letters[k];
    }
  }
  return std::nullopt;
}

}  // namespace keel::rewards
