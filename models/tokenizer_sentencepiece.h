// SentencePiece tokenizers through libsentencepiece: loading .model files (Llama-2, Mistral, T5,
// Gemma style) and TRAINING a small model from in-memory text with SentencePieceTrainer (the
// quickstart trains a tiny tokenizer on synthetic arithmetic text; tests train their own).
// Deliberately not here: sampling / n-best encodings (subword regularization), vocabulary
// restriction, the HF tokenizer.json rendering of SentencePiece models (see tokenizer_bpe.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/tokenizer.h"

namespace keel::models {

/// Trainer settings beyond corpus, vocab_size and output prefix. Names follow spm_train's flags.
struct SentencePieceTrainOptions {
  std::string model_type = "bpe";  ///< bpe | unigram | char | word
  double character_coverage = 1.0;
  /// [interp] "identity" rather than spm_train's "nmt_nfkc": synthetic arithmetic and code text
  /// must round-trip exactly (NFKC would rewrite e.g. full-width digits).
  std::string normalization_rule_name = "identity";
  bool byte_fallback = false;
  bool split_digits = true;  ///< one token per digit: arithmetic tasks need digit-level tokens
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  /// false: vocab_size is an upper bound (a tiny corpus may yield fewer pieces) instead of an error.
  bool hard_vocab_limit = true;
  std::vector<std::string> user_defined_symbols;  ///< always one piece, parsed inside text
  std::vector<std::string> control_symbols;       ///< special tokens (never produced from text by SP)
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;  ///< -1 disables (not for unk)
  int num_threads = 1;
  uint32_t seed = 1234;  ///< SentencePiece's global random seed (unigram sampling)
  int max_sentence_length = 16384;
  bool quiet = true;  ///< silence the trainer's progress log on stderr
};

/// Trains a SentencePiece model on `corpus_lines` (one sentence per entry) and writes
/// `model_prefix`.model and `model_prefix`.vocab. Returns the .model path. Training errors (vocab
/// too large for the corpus, unwritable prefix, bad option) throw keel::Error.
std::string train_sentencepiece(const std::vector<std::string>& corpus_lines, int vocab_size,
                                const std::string& model_prefix,
                                const SentencePieceTrainOptions& options = {});

/// Loads a .model file; a missing or malformed file throws keel::Error naming it.
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path);

}  // namespace keel::models
