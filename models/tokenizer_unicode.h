// Unicode helpers for keel's tokenizers: UTF-8 decoding/encoding, the three character classes the
// GPT-style pre-tokenizer regexes use (\p{L}, \p{N}, \s = White_Space), NFC normalization, and a
// lossy UTF-8 repair matching Rust's String::from_utf8_lossy (what HF decoders return).
// Tables come from scripts/gen_tokenizer_unicode.py (Python's unicodedata). This is deliberately
// not a general Unicode library: no case mapping, no other normal forms, no other categories.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keel::models::unicode {

/// One decoded code point and the byte span it came from.
struct CodePoint {
  char32_t cp;    ///< U+FFFD for an invalid byte
  size_t offset;  ///< byte offset in the input
  size_t length;  ///< bytes consumed (1 for an invalid byte)
};

/// Decodes UTF-8; each byte that does not start a valid sequence becomes U+FFFD of length 1.
std::vector<CodePoint> decode_utf8(std::string_view s);
/// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

bool is_letter(char32_t cp);      ///< \p{L}: general category L*
bool is_number(char32_t cp);      ///< \p{N}: general category N*
bool is_whitespace(char32_t cp);  ///< \s in Unicode mode: the White_Space property
uint8_t combining_class(char32_t cp);

/// Unicode Normalization Form C (canonical decomposition, canonical ordering, composition).
/// Invalid UTF-8 bytes are passed through unchanged.
std::string nfc(std::string_view s);

/// Replaces each maximal invalid UTF-8 subpart with U+FFFD, like Rust's from_utf8_lossy.
std::string utf8_lossy(std::string_view bytes);

/// The Unicode version of the tables, e.g. "14.0.0".
const char* tables_version();

}  // namespace keel::models::unicode

// Generated tables (tokenizer_unicode_data.cpp); only tokenizer_unicode.cpp reads them.
namespace keel::models::unicode_data {
struct CodeRange {
  char32_t first, last;
};
struct CccRange {
  char32_t first, last;
  uint8_t ccc;
};
struct CodeTriple {
  char32_t a, b, c;  ///< decompositions: cp -> (a=cp, b, c); compositions: (a, b) -> c
};
extern const char* const kUnicodeVersion;
extern const CodeRange kLetters[];
extern const size_t kLetters_size;
extern const CodeRange kNumbers[];
extern const size_t kNumbers_size;
extern const CodeRange kWhiteSpace[];
extern const size_t kWhiteSpace_size;
extern const CccRange kCombiningClass[];
extern const size_t kCombiningClass_size;
extern const CodeTriple kDecompositions[];  ///< {cp, first, second or 0}, sorted by cp
extern const size_t kDecompositions_size;
extern const CodeTriple kCompositions[];  ///< {first, second, composite}, sorted by (first, second)
extern const size_t kCompositions_size;
extern const char32_t kNfcFastPathBelow;
}  // namespace keel::models::unicode_data
