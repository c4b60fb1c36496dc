// UTF-8, character classes and NFC over the generated tables. See tokenizer_unicode.h.
#include "models/tokenizer_unicode.h"

#include <algorithm>

namespace keel::models::unicode {
namespace {

namespace ud = keel::models::unicode_data;

bool in_ranges(const ud::CodeRange* r, size_t n, char32_t cp) {
  const ud::CodeRange* end = r + n;
  const ud::CodeRange* it =
      std::upper_bound(r, end, cp, [](char32_t c, const ud::CodeRange& x) { return c < x.first; });
  return it != r && cp <= (it - 1)->last;
}

// Hangul syllable constants (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const ud::CodeTriple* begin = ud::kDecompositions;
  const ud::CodeTriple* end = begin + ud::kDecompositions_size;
  const ud::CodeTriple* it =
      std::lower_bound(begin, end, cp, [](const ud::CodeTriple& x, char32_t c) { return x.a < c; });
  if (it == end || it->a != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->b, out);
  if (it->c != 0) decompose(it->c, out);
}

// The primary composite of (a, b), or 0.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const ud::CodeTriple* begin = ud::kCompositions;
  const ud::CodeTriple* end = begin + ud::kCompositions_size;
  const ud::CodeTriple* it = std::lower_bound(begin, end, std::pair{a, b}, [](const ud::CodeTriple& x, std::pair<char32_t, char32_t> k) {
    return x.a < k.first || (x.a == k.first && x.b < k.second);
  });
  return (it != end && it->a == a && it->b == b) ? it->c : 0;
}

// NFC of one run of valid code points.
void nfc_run(const std::vector<char32_t>& in, std::string& out) {
  std::vector<char32_t> d;
  d.reserve(in.size() + 8);
  for (char32_t cp : in) decompose(cp, d);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<ptrdiff_t>(i), d.begin() + static_cast<ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition (Unicode §3.11 D117).
  std::vector<char32_t> c;
  c.reserve(d.size());
  ptrdiff_t starter = -1;  // index in c of the last starter
  uint8_t last_ccc = 0;
  for (char32_t cp : d) {
    const uint8_t ccc = combining_class(cp);
    if (starter >= 0) {
      const bool blocked = !c.empty() && static_cast<ptrdiff_t>(c.size()) - 1 != starter &&
                           (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (char32_t comp = compose_pair(c[static_cast<size_t>(starter)], cp)) {
          c[static_cast<size_t>(starter)] = comp;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = static_cast<ptrdiff_t>(c.size());
      last_ccc = 0;
    } else {
      last_ccc = ccc;
    }
    c.push_back(cp);
  }
  for (char32_t cp : c) append_utf8(out, cp);
}

}  // namespace

std::vector<CodePoint> decode_utf8(std::string_view s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = p[i];
    size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      out.push_back({b0, i, 1});
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out.push_back({0xFFFD, i, 1});
      ++i;
      continue;
    }
    out.push_back({cp, i, len});
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(ud::kLetters, ud::kLetters_size, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(ud::kNumbers, ud::kNumbers_size, cp);
}

bool is_whitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x9 && cp <= 0xD);
  return in_ranges(ud::kWhiteSpace, ud::kWhiteSpace_size, cp);
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const ud::CccRange* begin = ud::kCombiningClass;
  const ud::CccRange* end = begin + ud::kCombiningClass_size;
  const ud::CccRange* it =
      std::upper_bound(begin, end, cp, [](char32_t c, const ud::CccRange& x) { return c < x.first; });
  return (it != begin && cp <= (it - 1)->last) ? (it - 1)->ccc : 0;
}

std::string nfc(std::string_view s) {
  // Fast path: only code points below U+0300 (checked by the generator to be NFC-stable starters
  // that never compose with each other).
  bool fast = true;
  for (unsigned char b : s) {
    if (b >= 0xCC) {  // the first lead byte that can encode U+0300 or above
      fast = false;
      break;
    }
  }
  if (fast) return std::string(s);
  std::string out;
  out.reserve(s.size());
  std::vector<char32_t> run;
  for (const CodePoint& c : decode_utf8(s)) {
    const bool invalid = c.cp == 0xFFFD && c.length == 1 && static_cast<unsigned char>(s[c.offset]) >= 0x80;
    if (invalid) {
      nfc_run(run, out);
      run.clear();
      out += s[c.offset];
    } else {
      run.push_back(c.cp);
    }
  }
  nfc_run(run, out);
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  // Maximal-subpart replacement (Unicode §3.9, U+FFFD substitution of maximal subparts), which is
  // what Rust's from_utf8_lossy does.
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = p[i];
    if (b0 < 0x80) {
      out += static_cast<char>(b0);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
    else if (b0 == 0xE0) need = 2, lo = 0xA0;
    else if (b0 >= 0xE1 && b0 <= 0xEC) need = 2;
    else if (b0 == 0xED) need = 2, hi = 0x9F;
    else if (b0 >= 0xEE && b0 <= 0xEF) need = 2;
    else if (b0 == 0xF0) need = 3, lo = 0x90;
    else if (b0 >= 0xF1 && b0 <= 0xF3) need = 3;
    else if (b0 == 0xF4) need = 3, hi = 0x8F;
    if (need == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k <= need && i + k < n; ++k) {
      const unsigned char b = p[i + k];
      const unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
      if (b < l || b > h) break;
    }
    if (k == need + 1) {
      out.append(bytes.substr(i, need + 1));
      i += need + 1;
    } else {
      out += "\xEF\xBF\xBD";
      i += k;  // the lead byte plus the valid continuation bytes seen so far
    }
  }
  return out;
}

const char* tables_version() { return ud::kUnicodeVersion; }

}  // namespace keel::models::unicode
