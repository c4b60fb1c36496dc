// SequenceBatch: fixed (prompt, response) token sequences for the teacher-forced learners (SFT,
// DPO, reward-model training), laid out as the RolloutBatch is (prompts left-padded, responses
// right-padded), and collate() that builds one from token lists.
// Deliberately not here: tokenization and chat templates (trainer/rollout/prompt_format.h).
//
// Shape legend: N rows, P longest prompt, R longest response.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/logprobs.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::learner {

struct SequenceBatch {
  at::Tensor prompt_ids;     ///< [N, P] int64, left-padded
  at::Tensor prompt_mask;    ///< [N, P] int64
  at::Tensor response_ids;   ///< [N, R] int64, right-padded
  at::Tensor response_mask;  ///< [N, R] int64
  /// [N, R] int64 (optional): the response-side tokens the model sees, when more than
  /// response_mask's (multi-turn: observations between the policy's turns; LogprobOptions).
  at::Tensor response_attention;

  int64_t size() const { return prompt_ids.defined() ? prompt_ids.size(0) : 0; }
  /// Rows [lo, hi) with all-padding prompt (left) and response (right) columns trimmed away.
  SequenceBatch rows(int64_t lo, int64_t hi) const;
  /// The same batch on `device` (a no-op copy-free view where it is there already).
  SequenceBatch to(const at::Device& device) const;
};

/// sequence_logprobs() of every row under no-grad, `micro` rows per forward, concatenated [N, R]
/// (the fields `opts` asks for), on the CPU whatever the model's device (`b` may be anywhere). For
/// reference log-probs, critic values and evaluations.
models::SequenceLogprobs no_grad_logprobs(models::Transformer& model, const SequenceBatch& b, int64_t micro,
                                          const models::LogprobOptions& opts = {});

/// Micro-batches over rows [lo, hi): consecutive runs of at most max_rows rows and, when
/// max_tokens > 0, of at most max_tokens tokens (row_tokens [N] int64: a row's real tokens, prompt
/// and seen response; read only when max_tokens > 0); a row longer than max_tokens goes alone.
/// Half-open [begin, end) pairs.
std::vector<std::pair<int64_t, int64_t>> micro_batches(const at::Tensor& row_tokens, int64_t lo, int64_t hi,
                                                       int64_t max_rows, int64_t max_tokens);

/// Real tokens of each row [N] int64 on the CPU: prompt_mask's plus the seen response's
/// (response_attention when defined, else response_mask).
at::Tensor row_tokens(const at::Tensor& prompt_mask, const at::Tensor& response_mask,
                      const at::Tensor& response_attention);

/// The RolloutBatch's sequences (prompt, response, response_attention), for no-grad passes.
SequenceBatch sequences(const rollout::RolloutBatch& b);

/// Pads token lists into a batch. Prompts must be non-empty (responses may be empty: their row
/// contributes nothing). prompts.size() == responses.size().
SequenceBatch collate(const std::vector<std::vector<int64_t>>& prompts,
                      const std::vector<std::vector<int64_t>>& responses, int64_t pad_id = 0);

}  // namespace keel::learner
