// Options of keel generate / logprobs / tokenize (implemented in cmd_models.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace keel::cli {

struct GenerateArgs {
  std::string model;          ///< HF model directory
  std::string prompts;        ///< prompt JSONL
  std::string output;         ///< completions JSONL ("" or "-" = stdout)
  std::string tokenizer;      ///< "" = the model directory's
  std::string chat_template = "plain";
  int64_t max_new_tokens = 64;
  double temperature = 1.0;   ///< 0 = greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  int samples = 1;            ///< completions per prompt
  int batch_size = 16;
  bool with_logprobs = false;
  std::string device = "auto";  ///< auto | cpu | cuda (fp32 either way)
};
int run_generate(const GenerateArgs& a);

struct LogprobsArgs {
  std::string model;
  std::string input;          ///< {prompt | messages, completion} JSONL
  std::string output;
  std::string tokenizer;
  std::string chat_template = "plain";
  double temperature = 1.0;
  std::string device = "auto";  ///< auto | cpu | cuda (fp32 either way)
};
int run_logprobs(const LogprobsArgs& a);

struct TokenizeArgs {
  std::string tokenizer;      ///< file or model directory
  std::string text;
};
int run_tokenize(const TokenizeArgs& a);

}  // namespace keel::cli
