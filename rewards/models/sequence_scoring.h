// Batched read-outs of a model at the last token of each sequence — what learned rewards need:
// the scalar reward head (a Bradley–Terry reward model, spec D1) and the next-token logits after a
// judge prompt (a generative judge, spec D5). Sequences of different lengths share one left-padded
// batch, so the last real token of every row is the last column; positions come from the mask,
// which makes the padding transparent (transformer.h).
// Deliberately not here: tokenization of prompt + response (the callers), reward math.
//
// Shape legend: N sequences, V vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "models/transformer.h"

namespace keel::rewards {

/// Keeps the last `max_len` ids of a sequence ([interp] left truncation: the reward is read at the
/// end, so the end is what must survive). max_len <= 0 = unchanged.
std::vector<int64_t> keep_last_tokens(const std::vector<int64_t>& ids, int64_t max_len);

/// Reward head at the last token of each sequence, one forward over the whole list: [N] in the
/// model's dtype on its device, differentiable (the train-rm loss backpropagates through it).
/// Every sequence must be non-empty; the model must carry a reward head.
torch::Tensor last_token_rewards(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                                 int64_t pad_id = 0);

/// last_token_rewards under no-grad in chunks of `batch_size`: [N] float32 on the CPU.
torch::Tensor score_sequences(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                              int64_t batch_size, int64_t pad_id = 0);

/// Next-token logits after the last token of each sequence, no-grad, in chunks of `batch_size`:
/// [N, V] float32 on the CPU. The model must carry its LM head.
torch::Tensor next_token_logits(models::Transformer& model, const std::vector<std::vector<int64_t>>& seqs,
                                int64_t batch_size, int64_t pad_id = 0);

}  // namespace keel::rewards
