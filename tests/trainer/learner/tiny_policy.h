// The learner tests' policy: a 1-layer Llama (hidden 32, 2 query heads, 1 KV head, head_dim 16,
// MLP 64, vocab 16, context 16, EOS 1), random-initialised from `seed`.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "models/generate.h"
#include "models/transformer.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::learner::testing {

inline constexpr int64_t kTinyVocab = 16;

inline models::Transformer tiny_policy(uint64_t seed, bool value_head = false) {
  torch::manual_seed(seed);
  models::ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 16;
  c.intermediate_size = 64;
  c.vocab_size = kTinyVocab;
  c.max_position_embeddings = 16;
  c.eos_token_ids = {1};
  return models::Transformer(c, models::HeadOptions{true, value_head, false});
}

/// Samples one response per prompt from `m` (eval mode) into a batch: prompt / response ids and
/// masks, old_logprobs = the sampler's, group_ids [N] = `groups`. Rewards and advantages are the
/// caller's.
inline rollout::RolloutBatch sampled_batch(models::Transformer& m, const std::vector<std::vector<int64_t>>& prompts,
                                           const std::vector<int64_t>& groups, int max_new_tokens, uint64_t seed) {
  models::SamplingOptions so;
  so.max_new_tokens = max_new_tokens;
  so.seed = seed;
  m.train(false);
  auto out = models::generate(m, prompts, so);
  rollout::RolloutBatch b;
  b.prompt_ids = out.prompt_ids;
  b.prompt_mask = out.prompt_mask;
  b.response_ids = out.response_ids;
  b.response_mask = out.response_mask;
  b.old_logprobs = out.logprobs;
  b.group_ids = torch::tensor(groups, torch::kLong);
  return b;
}

}  // namespace keel::learner::testing
