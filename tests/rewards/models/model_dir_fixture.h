// Test helpers for the learned rewards (rewards/models/): a SentencePiece tokenizer trained here on
// judge-style text (with "▁yes" / "▁no" as single pieces) and tiny random-init model directories
// saved with it: a causal LM (a judge), a reward model, and judges whose weights are set by hand to
// always answer yes (or no).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "tests/models/test_util.h"

namespace keel::rewards::testing {

/// Trains the tokenizer into `dir` (tokenizer.model) and returns it loaded.
inline std::unique_ptr<models::Tokenizer> make_judge_tokenizer(const std::filesystem::path& dir) {
  std::vector<std::string> corpus;
  for (int a = 0; a < 60; ++a) {
    const int b = (a * 7) % 23;
    corpus.push_back("Question: What is " + std::to_string(a) + " + " + std::to_string(b) + "? Response: " +
                     std::to_string(a + b) + " Is the response correct? Answer: yes");
    corpus.push_back("Question: What is " + std::to_string(a) + " + " + std::to_string(b) + "? Response: " +
                     std::to_string(a + b + 1) + " Is the response correct? Answer: no");
  }
  std::filesystem::create_directories(dir);
  models::SentencePieceTrainOptions o;
  o.hard_vocab_limit = false;
  o.user_defined_symbols = {"\xE2\x96\x81yes", "\xE2\x96\x81no"};  // "▁yes", "▁no": one piece each
  models::train_sentencepiece(corpus, 80, (dir / "tokenizer").string(), o);
  return models::load_tokenizer((dir / "tokenizer.model").string());
}

/// A tiny llama config sized to `tok`.
inline models::ModelConfig tiny_for(const models::Tokenizer& tok) {
  auto cfg = models::testing::tiny_config();
  cfg.vocab_size = tok.vocab_size();
  cfg.eos_token_ids = {tok.eos_id()};
  cfg.bos_token_id = tok.bos_id();
  return cfg;
}

/// Saves `m` with the tokenizer files of `tok_dir` as `dir`.
inline void save_with_tokenizer(const models::Transformer& m, const std::filesystem::path& dir,
                                const std::filesystem::path& tok_dir) {
  models::SaveOptions so;
  so.tokenizer_dir = tok_dir.string();
  models::save_pretrained(m, dir.string(), so);
}

/// A judge whose verdict ignores its input: every weight 0 except the norms (1), the last MLP's
/// down_proj bias (1), and the LM-head row of `favoured` (`strength` per dimension). The residual
/// stream is then the constant bias vector, so the logit of `favoured` is strength · H and every
/// other logit 0, for any prompt.
inline models::Transformer constant_judge(const models::Tokenizer& tok, int64_t favoured, double strength) {
  auto cfg = tiny_for(tok);
  cfg.mlp_bias = true;
  cfg.tie_word_embeddings = false;
  models::Transformer m(cfg);
  torch::NoGradGuard ng;
  for (auto& [name, p] : m.named_parameters()) {
    if (name.find("norm") != std::string::npos) p.fill_(1.0);
    else p.zero_();
  }
  const auto params = m.named_parameters();
  params.at("model.layers." + std::to_string(cfg.num_hidden_layers - 1) + ".mlp.down_proj.bias").fill_(1.0);
  params.at("lm_head.weight")[favoured].fill_(strength);
  return m;
}

}  // namespace keel::rewards::testing
