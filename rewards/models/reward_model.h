// reward_model — a trained scalar reward model as a reward scheme (spec group D): an HF
// *ForSequenceClassification directory (num_labels = 1, the "score" head; e.g. one written by
// `keel train-rm`) scores prompt + response at the last token, in batches, under no-grad.
//
//   ids = tokenize(prompt text as the policy saw it, with the tokenizer's BOS) ++ tokenize(response)
//   r   = score head at the last token            normalize: none
//   r   = σ(r)                                    normalize: sigmoid  [interp] a bounded (0, 1) reward
//   r   = −log(1 − σ(r)) = softplus(r)            normalize: minimax  (a discriminator's reward, spec A6)
//
// This is the same sequence layout `keel train-rm` trains on (cmd_train_rm.cpp), so a model trained
// there scores rollouts the way it saw pairs. The raw score is what group-A shaping (par, meanstd,
// clip, ...) expects: later components read it as prior.<this component's name>.
// Deliberately not here: shaping / running normalisation (rewards/schemes/), ensembles, judges.
//
// Shape legend: N samples.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/reward.h"

namespace keel::rewards {

struct RewardModelOptions {
  std::string path;            ///< HF reward-model directory (score.weight)
  std::string tokenizer;       ///< "" = path
  int64_t batch_size = 16;     ///< sequences per forward pass
  std::string normalize = "none";  ///< none | sigmoid | minimax
  int64_t max_length = 0;      ///< longer sequences keep their last tokens; 0 = the model's context
  at::Device device = at::kCPU;  ///< where the weights live (a run's judge stage: the learner's device)
};

/// The model directory `path` names: itself when it holds a config.json; for a keel run directory
/// (runs/<name>), its newest checkpoint's model — checkpoints/step-*/policy (keel train / sft) or
/// checkpoints/step-*/model (keel train-rm) — so a judge config can name the run that trained the
/// judge; "" when neither.
std::string resolve_model_dir(const std::string& path);

/// Reads the required param `path` and resolves it (resolve_model_dir), reporting one that names
/// neither a model nor a run with checkpoints at `path`.
void read_model_path(config::Reader& r, std::string& path, const std::string& doc);

/// Reads the params of a reward_model component; resolves `path` (resolve_model_dir), loads nothing.
void read_reward_model_options(config::Reader& r, RewardModelOptions& o);

/// Token ids a reward model scores: tokenize(prompt, add_special) ++ tokenize(response), the last
/// max_len kept (max_len <= 0: all). Shared with keel train-rm.
std::vector<int64_t> reward_model_sequence(const models::Tokenizer& tok, const std::string& prompt,
                                           const std::string& response, int64_t max_len);

class RewardModelScheme : public RewardScheme {
 public:
  RewardModelScheme(RewardModelOptions opt, std::string where);
  /// Loads the model (idempotent).
  void bind(const RewardContext& ctx) override;
  /// rewards [N]; detail "raw" [N] (the unnormalised score); metrics rm/raw_mean, rm/raw_std.
  RewardOutput score(const RewardInput& in) override;
  /// Raw scores of explicit (prompt, response) pairs, batched: [N] float32.
  torch::Tensor raw_scores(const std::vector<std::string>& prompts, const std::vector<std::string>& responses,
                           int64_t* tokens = nullptr);

 private:
  void load();
  RewardModelOptions opt_;
  std::string where_;
  std::optional<models::Transformer> model_;
  std::unique_ptr<models::Tokenizer> tok_;
};

}  // namespace keel::rewards
