// keel's tokenizer interface: text <-> token ids for the models keel trains, with the special
// tokens (BOS/EOS/PAD, chat markers) that rollout, SFT and chat templates need. Two
// implementations: SentencePiece .model files (tokenizer_sentencepiece.h) and HF tokenizer.json
// byte-level BPE as used by Qwen2/Qwen3 and Llama-3 (tokenizer_bpe.h). load_tokenizer() picks one
// from a file or an HF model directory.
// Deliberately not here: batching/padding into tensors, truncation, offsets, chat templates
// (chat_template.h), training BPE vocabularies.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keel::models {

/// Returned by piece_to_id and the *_id accessors when there is no such token.
inline constexpr int64_t kNoToken = -1;

/// All methods are const and keep no mutable state: one tokenizer may serve several threads.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Text -> ids. `add_special` adds what the tokenizer adds around one sequence (BOS for
  /// Llama-3 and SentencePiece models with a BOS; nothing for Qwen). With `parse_special` the
  /// text of a special token (e.g. "<|im_start|>") becomes that token's id, as HF does by
  /// default; without it, special-token text is tokenized as ordinary text.
  virtual std::vector<int64_t> encode(std::string_view text, bool add_special,
                                      bool parse_special = true) const = 0;

  /// Ids -> text. `skip_special` drops special tokens (BOS/EOS/chat markers). Byte sequences
  /// that are not valid UTF-8 become U+FFFD. An id outside [0, vocab_size) throws keel::Error.
  virtual std::string decode(std::span<const int64_t> ids, bool skip_special) const = 0;

  /// The raw bytes token `id` contributes to a decoded text (may be a partial UTF-8
  /// sequence, e.g. half of an emoji) — what streaming detokenization and debug output need.
  virtual std::string id_to_bytes(int64_t id) const = 0;

  /// The vocabulary string of `id` ("Ġhello", "▁hello", "<|im_end|>"). Out of range throws.
  virtual std::string id_to_piece(int64_t id) const = 0;
  /// The id of a vocabulary string, or kNoToken.
  virtual int64_t piece_to_id(std::string_view piece) const = 0;

  /// Number of ids: every id in [0, vocab_size) is valid. Models usually pad their embedding
  /// past this (Qwen3: 151669 here, 151936 rows).
  virtual int64_t vocab_size() const = 0;

  virtual int64_t bos_id() const = 0;  ///< kNoToken if none (Qwen)
  virtual int64_t eos_id() const = 0;  ///< end of a generation (e.g. <|im_end|> for Qwen3 chat)
  virtual int64_t pad_id() const = 0;  ///< kNoToken if none

  /// Whether `id` is a special token (skipped by decode(ids, skip_special=true)).
  virtual bool is_special(int64_t id) const = 0;
  /// The pieces of every special token, in id order.
  virtual std::vector<std::string> special_tokens() const = 0;

  /// "sentencepiece" or "hf_bpe".
  virtual std::string kind() const = 0;
  /// The file it was loaded from ("" when built in memory).
  virtual std::string source() const = 0;
};

/// Loads a tokenizer from `path`:
///   - a directory: its tokenizer.json (HF), else its tokenizer.model (SentencePiece);
///   - a file: *.json as HF tokenizer.json, *.model as SentencePiece, anything else by content.
/// For HF files the BOS/EOS/PAD tokens come from a tokenizer_config.json beside the file when
/// present. A missing, unreadable or malformed file throws keel::Error naming the file and the
/// problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

/// A human-readable table of how `text` tokenizes (the `keel tokenize` command): a header line
/// with the count, then one line per token: position, id, piece and the bytes it decodes to,
/// both as escaped string literals. Encodes with parse_special=true and the given `add_special`.
std::string tokenize_debug(const Tokenizer& tokenizer, std::string_view text, bool add_special = false);

/// Escapes a byte string for display: printable ASCII as is, \n \t \r \\ \" escaped, every other
/// byte of valid multi-byte UTF-8 kept, invalid bytes as \xNN.
std::string escape_for_display(std::string_view bytes);

}  // namespace keel::models
