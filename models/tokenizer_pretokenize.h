// The pre-tokenization steps of HF byte-level BPE tokenizers: the GPT-2 / GPT-4 (cl100k, Llama-3) /
// Qwen2 split regexes, hand-written over UTF-8 code points with Unicode category tables (no regex
// engine), and the GPT-2 byte <-> unicode-character mapping of the ByteLevel step.
// Only these known patterns are supported — a tokenizer.json with any other Split regex is
// rejected at load (see tokenizer_bpe.cpp) rather than tokenized approximately.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::models {

/// The split regexes keel implements, keyed by their exact tokenizer.json text.
enum class SplitPattern {
  kGpt2,    ///< 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kCl100k,  ///< GPT-4 / Llama-3: (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   ///< Qwen2 / Qwen2.5 / Qwen3: as kCl100k but \p{N} matches single digits
};

/// The pattern whose regex source is exactly `regex` (as stored in tokenizer.json), if known.
std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);
/// The regex source of a pattern (the text split_pattern_from_regex accepts).
std::string_view split_pattern_regex(SplitPattern p);
/// Human-readable name: "gpt2", "cl100k", "qwen2".
std::string_view split_pattern_name(SplitPattern p);

/// Splits `text` into the consecutive matches of the pattern (Split with behavior "Isolated").
/// The pieces cover `text` exactly and are views into it. Invalid UTF-8 bytes count as one
/// non-letter, non-number, non-space character each.
std::vector<std::string_view> split_pretokens(std::string_view text, SplitPattern p);

/// GPT-2's byte-level alphabet: byte b -> the UTF-8 text of the character standing for it.
const std::string& byte_to_unicode(unsigned char b);
/// Maps every byte of `bytes` to its byte-level character.
std::string bytes_to_unicode(std::string_view bytes);
/// The inverse: each character of `text` back to its byte. Returns false (and leaves `out`
/// partially written) if some character is outside the 256-character alphabet.
bool unicode_to_bytes(std::string_view text, std::string& out);

}  // namespace keel::models
