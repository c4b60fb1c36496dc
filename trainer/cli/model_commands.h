// Options of keel generate / logprobs / tokenize (implemented in cmd_models.cpp), and the two
// steps behind them that a test can call without a model: reading a generate/logprobs input file
// into token ids, and batch tokenization of a JSONL file.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "models/chat_template.h"

namespace keel::models {
class Tokenizer;
}

namespace keel::cli {

struct GenerateArgs {
  std::string model;          ///< HF model directory
  std::string prompts;        ///< prompt JSONL
  std::string output;         ///< completions JSONL ("" or "-" = stdout)
  std::string tokenizer;      ///< "" = the model directory's
  std::string chat_template = "plain";  ///< auto | model | a built-in (models::resolve_chat_template)
  int64_t max_new_tokens = 64;
  double temperature = 1.0;   ///< 0 = greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  int samples = 1;            ///< completions per prompt
  int batch_size = 16;
  bool with_logprobs = false;
  bool skip_bad_lines = false;  ///< skip (and count) bad lines instead of failing
  std::string device = "auto";  ///< auto | cpu | cuda (fp32 either way)
  std::string adapter;          ///< PEFT LoRA adapter directory applied on the model ("" = none)
};
int run_generate(const GenerateArgs& a);

struct LogprobsArgs {
  std::string model;
  std::string input;          ///< {prompt | messages | prompt_ids, completion | completion_ids} JSONL
  std::string output;
  std::string tokenizer;
  std::string chat_template = "plain";  ///< auto | model | a built-in (models::resolve_chat_template)
  double temperature = 1.0;
  bool skip_bad_lines = false;
  std::string device = "auto";  ///< auto | cpu | cuda (fp32 either way)
  std::string adapter;          ///< PEFT LoRA adapter directory applied on the model ("" = none)
};
int run_logprobs(const LogprobsArgs& a);

struct TokenizeArgs {
  std::string tokenizer;      ///< file or model directory
  std::string text;           ///< one string: a human-readable table
  bool has_text = false;      ///< `text` was given (it may be "")
  std::string jsonl;          ///< batch mode: {text, id?} JSONL ("-" = stdin) -> {id, ids, tokens} JSONL
  std::string output;         ///< "" or "-" = stdout
  bool add_special = false;   ///< what the tokenizer adds around one sequence (BOS), as add_special_tokens=True
  bool skip_bad_lines = false;
};
int run_tokenize(const TokenizeArgs& a);

/// One record of a generate / logprobs input file, as token ids.
struct ModelInput {
  std::string id_json;              ///< JSON text echoed as "id": the record's own id, else "FILE:LINE"
  std::string where;                ///< "FILE:LINE", for messages
  std::string prompt_text;          ///< the rendered prompt, or the decoded prompt_ids (special tokens kept)
  std::vector<int64_t> prompt;      ///< [P] ids the model is conditioned on (BOS included)
  std::vector<int64_t> completion;  ///< [C] logprobs only: the scored continuation
};

struct ModelInputOptions {
  models::ChatTemplate chat_template{"plain"};  ///< for text prompts; token ids are used as given
  bool with_completion = false;         ///< logprobs: each record needs completion | completion_ids
  int64_t vocab_size = 0;               ///< token ids must lie in [0, vocab_size)
  int64_t context_length = 0;           ///< prompt + completion + max_new_tokens must fit (0 = unchecked)
  int64_t max_new_tokens = 0;           ///< generate: room kept for the response
  bool skip_bad_lines = false;
};

/// Reads {id?, prompt | messages | prompt_ids, completion | completion_ids} JSONL. Text prompts go
/// through the chat template and are encoded with the tokenizer's special tokens (BOS); token ids
/// are taken as they are. A bad record (both forms or neither, ids outside the vocabulary, too long
/// for the context) throws keel::Error naming FILE:LINE, or with skip_bad_lines is skipped and
/// counted in a warning. No usable record at all is an error.
std::vector<ModelInput> read_model_inputs(const std::string& path, const models::Tokenizer& tok,
                                          const ModelInputOptions& o);

/// Batch `keel tokenize`: {text, id?} per line of `in` -> {"id", "ids", "tokens"} per line (tokens
/// are the vocabulary pieces; id is the record's own, else "SOURCE:LINE"). Special-token text is
/// parsed as the special token, as transformers does; `add_special` also adds what the tokenizer's
/// post-processor (HF) or BOS setting (SentencePiece) adds around one sequence.
std::string tokenize_jsonl(const models::Tokenizer& tok, std::istream& in, const std::string& source,
                           bool add_special, bool skip_bad_lines);

}  // namespace keel::cli
