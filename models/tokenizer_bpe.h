// HF tokenizer.json byte-level BPE (Qwen2/Qwen2.5/Qwen3, Llama-3, GPT-2 layouts): added/special
// tokens split out first, NFC normalizer, the Split regex + ByteLevel pre-tokenizer, BPE merges by
// rank (with ignore_merges and byte_fallback), TemplateProcessing post-processor (BOS), and the
// ByteLevel decoder.
// Deliberately not supported (rejected at load with an error naming the component): WordPiece /
// Unigram models, Metaspace / Replace / ByteFallback decoders (Llama-2 / Mistral tokenizer.json —
// use their tokenizer.model through SentencePiece), split regexes other than the GPT-2, cl100k and
// Qwen2 patterns, BPE dropout, continuing_subword_prefix / end_of_word_suffix.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "models/tokenizer.h"

namespace keel::models {

/// Parses tokenizer.json text. `source` names the text in errors (a file path). `config_json`
/// is the text of tokenizer_config.json ("" if none): its bos_token / eos_token / pad_token pick the
/// BOS/EOS/PAD ids. Without it, BOS is the first token of the post-processor's template, EOS the
/// first of <|endoftext|>, <|end_of_text|>, </s>, <eos> in the vocabulary, and PAD none
/// [interp: heuristics when no tokenizer_config.json is present].
std::unique_ptr<Tokenizer> parse_hf_tokenizer_json(std::string_view json, const std::string& source,
                                                   std::string_view config_json = {},
                                                   const std::string& config_source = {});

/// Reads `path` (a tokenizer.json) and, when it exists, tokenizer_config.json in the same folder.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);

}  // namespace keel::models
