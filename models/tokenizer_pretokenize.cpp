// Hand-written equivalents of the GPT-2 / cl100k / Qwen2 pre-tokenizer regexes and the byte-level
// alphabet. Each match_* function returns where the leftmost-first alternation of its regex ends
// when started at code point i, with the backtracking of each alternative worked out by hand in
// the comments. Tested against JavaScript's RegExp on the same strings (tests/models/tokenizer_parity).
#include "models/tokenizer_pretokenize.h"

#include <array>

#include "models/tokenizer_unicode.h"

namespace keel::models {
namespace {

using unicode::CodePoint;

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Character classes of one code point, computed once per input.
struct Cls {
  char32_t cp;
  bool letter, number, space;
  bool crlf() const { return cp == '\r' || cp == '\n'; }
  bool other() const { return !letter && !number && !space; }  // [^\s\p{L}\p{N}]
};

char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII case-insensitive. Returns the end or i.
// [interp] (?i:...) folds ASCII case only, as tiktoken-derived ports and transformers.js do;
// Oniguruma would also fold U+017F (long s) to 's'.
size_t match_contraction(const std::vector<Cls>& c, size_t i, bool fold) {
  const size_t n = c.size();
  if (c[i].cp != '\'' || i + 1 >= n) return i;
  auto at = [&](size_t k) { return fold ? ascii_lower(c[k].cp) : c[k].cp; };
  const char32_t a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 < n) {
    const char32_t b = at(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  return i;
}

// The whitespace alternatives shared by all three patterns, at a space character i:
//   \s*[\r\n]+   (cl100k/qwen2 only): \s* backtracks from the end of the whitespace run to the last
//                \r or \n in it, then [\r\n]+ takes that one character (the next is not \r\n,
//                or it would have been the last).
//   \s+(?!\S)    the whole run at end of text; else the run minus its last character, if that
//                leaves at least one (the last space then joins the following word).
//   \s+          the whole run.
size_t match_whitespace(const std::vector<Cls>& c, size_t i, bool newline_alt) {
  size_t k = i;
  while (k < c.size() && c[k].space) ++k;
  if (newline_alt) {
    for (size_t p = k; p > i; --p) {
      if (c[p - 1].crlf()) return p;
    }
  }
  if (k == c.size()) return k;
  if (k - i >= 2) return k - 1;
  return k;
}

size_t match_gpt2(const std::vector<Cls>& c, size_t i) {
  const size_t n = c.size();
  if (size_t e = match_contraction(c, i, /*fold=*/false); e != i) return e;
  // " ?X+" for X in \p{L}, \p{N}, [^\s\p{L}\p{N}]: the optional space only helps when followed by
  // X (a space is never X itself, so backtracking it away cannot succeed either).
  const size_t j = (c[i].cp == ' ' && i + 1 < n) ? i + 1 : i;
  size_t k = j;
  if (c[j].letter) {
    while (k < n && c[k].letter) ++k;
    return k;
  }
  if (c[j].number) {
    while (k < n && c[k].number) ++k;
    return k;
  }
  if (c[j].other()) {
    while (k < n && c[k].other()) ++k;
    return k;
  }
  return match_whitespace(c, i, /*newline_alt=*/false);
}

size_t match_cl100k(const std::vector<Cls>& c, size_t i, size_t max_digits) {
  const size_t n = c.size();
  if (size_t e = match_contraction(c, i, /*fold=*/true); e != i) return e;
  // [^\r\n\p{L}\p{N}]?\p{L}+ : one leading character that is none of \r \n L N, if a letter follows;
  // otherwise the letters alone.
  {
    size_t j = i;
    if (!c[i].crlf() && !c[i].letter && !c[i].number && i + 1 < n && c[i + 1].letter) j = i + 1;
    if (c[j].letter) {
      while (j < n && c[j].letter) ++j;
      return j;
    }
  }
  // \p{N}{1,max_digits}
  if (c[i].number) {
    size_t j = i;
    while (j < n && c[j].number && j - i < max_digits) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t j = (c[i].cp == ' ' && i + 1 < n && c[i + 1].other()) ? i + 1 : i;
    if (c[j].other()) {
      while (j < n && c[j].other()) ++j;
      while (j < n && c[j].crlf()) ++j;
      return j;
    }
  }
  return match_whitespace(c, i, /*newline_alt=*/true);
}

std::array<std::string, 256> make_byte_table() {
  // GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards.
  std::array<std::string, 256> t;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    unicode::append_utf8(t[static_cast<size_t>(b)], printable ? static_cast<char32_t>(b) : next++);
  }
  return t;
}

const std::array<std::string, 256>& byte_table() {
  static const std::array<std::string, 256> t = make_byte_table();
  return t;
}

// char32 -> byte for the inverse mapping; -1 if outside the alphabet. Covers U+0000..U+0143.
const std::array<int, 0x144>& inverse_table() {
  static const std::array<int, 0x144> inv = [] {
    std::array<int, 0x144> a;
    a.fill(-1);
    for (int b = 0; b < 256; ++b) {
      const auto cps = unicode::decode_utf8(byte_table()[static_cast<size_t>(b)]);
      a[cps[0].cp] = b;
    }
    return a;
  }();
  return inv;
}

}  // namespace

std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex) {
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  if (regex == kCl100kRegex) return SplitPattern::kCl100k;
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  return std::nullopt;
}

std::string_view split_pattern_regex(SplitPattern p) {
  switch (p) {
    case SplitPattern::kGpt2: return kGpt2Regex;
    case SplitPattern::kCl100k: return kCl100kRegex;
    case SplitPattern::kQwen2: return kQwen2Regex;
  }
  return {};
}

std::string_view split_pattern_name(SplitPattern p) {
  switch (p) {
    case SplitPattern::kGpt2: return "gpt2";
    case SplitPattern::kCl100k: return "cl100k";
    case SplitPattern::kQwen2: return "qwen2";
  }
  return {};
}

std::vector<std::string_view> split_pretokens(std::string_view text, SplitPattern p) {
  const std::vector<CodePoint> cps = unicode::decode_utf8(text);
  std::vector<Cls> c;
  c.reserve(cps.size());
  for (const CodePoint& x : cps) {
    const bool invalid = x.cp == 0xFFFD && x.length == 1 && static_cast<unsigned char>(text[x.offset]) >= 0x80;
    if (invalid) c.push_back({x.cp, false, false, false});
    else c.push_back({x.cp, unicode::is_letter(x.cp), unicode::is_number(x.cp), unicode::is_whitespace(x.cp)});
  }
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < c.size()) {
    size_t e = 0;
    switch (p) {
      case SplitPattern::kGpt2: e = match_gpt2(c, i); break;
      case SplitPattern::kCl100k: e = match_cl100k(c, i, 3); break;
      case SplitPattern::kQwen2: e = match_cl100k(c, i, 1); break;
    }
    if (e <= i) e = i + 1;  // every character class is covered above; defensive only
    const size_t b0 = cps[i].offset;
    const size_t b1 = e < cps.size() ? cps[e].offset : text.size();
    out.push_back(text.substr(b0, b1 - b0));
    i = e;
  }
  return out;
}

const std::string& byte_to_unicode(unsigned char b) { return byte_table()[b]; }

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_table()[b];
  return out;
}

bool unicode_to_bytes(std::string_view text, std::string& out) {
  const auto& inv = inverse_table();
  for (const CodePoint& c : unicode::decode_utf8(text)) {
    if (c.cp >= inv.size() || inv[c.cp] < 0 || (c.cp == 0xFFFD)) return false;
    out += static_cast<char>(inv[c.cp]);
  }
  return true;
}

}  // namespace keel::models
