// Teacher-forced log-probs of response tokens: what the learner recomputes for the ratio
// pi_theta / pi_old and what the sampler's log-probs are checked against (the LOG-PROB CONTRACT:
// at the same temperature, generate()'s log-probs equal sequence_logprobs() of the same
// sequences within 1e-5 in fp32; tests/models/generate_test.cpp).
// Layout (as in the RolloutBatch): prompts left-padded, responses right-padded.
// Deliberately not here: losses, KL, masking policies (trainer/learner).
#pragma once

#include <functional>

#include <torch/types.h>

#include "models/transformer.h"

namespace keel::models {

struct LogprobOptions {
  /// Logits are divided by this before log_softmax (the sampler's temperature; must be > 0).
  double temperature = 1.0;
  /// Also compute the entropy of each position's (temperature-scaled) distribution.
  bool entropy = false;
  /// Also the value head's output at the same positions (the state before each response token,
  /// verl's critic convention). The model must carry a value head.
  bool values = false;
  /// Skip the LM head (a separate critic has none): logprobs / entropy stay undefined.
  bool logprobs = true;
  /// Also a per-row summary of the final hidden states: hidden_reduce(hidden [N, R, H] float32 —
  /// the state each response token was sampled from, i.e. at the position before it — and
  /// response_mask [N, R]) -> [N, K], kept per micro-batch so [N, R, H] never accumulates
  /// (policy-side signals such as VERL's effective-rank metrics).
  std::function<at::Tensor(const at::Tensor& hidden, const at::Tensor& response_mask)> hidden_reduce;
  /// [N, R] 1 on every response-side token the model sees — the policy's and the ones appended
  /// between its turns (observations, tool results) — when that differs from response_mask (multi-
  /// turn episodes: response_mask marks the policy's tokens only). Undefined = response_mask. It
  /// must be a prefix mask (the conversation, then padding).
  at::Tensor response_attention;
  /// Padding-free: the rows' real tokens (prompt and seen response) are packed into one sequence
  /// row (Transformer::forward_hidden_packed), and the heads run only at the positions that
  /// predict a response_mask token. Same results as the padded pass within fp32 rounding; the
  /// cost is the batch's real tokens instead of N * (P + R).
  bool padding_free = false;
};

struct SequenceLogprobs {
  at::Tensor logprobs;  ///< [N, R] log p(response_t | prompt, response_<t), 0 where response_mask is 0
  at::Tensor entropy;   ///< [N, R] (undefined unless LogprobOptions::entropy), 0 where response_mask is 0
  at::Tensor values;    ///< [N, R] float32 (undefined unless LogprobOptions::values), 0 where response_mask is 0
  at::Tensor hidden_reduced;  ///< [N, K] (undefined unless LogprobOptions::hidden_reduce)
};

/// prompt_ids [N, P] left-padded (prompt_mask [N, P], last column all 1), response_ids [N, R]
/// right-padded (response_mask [N, R]). One forward pass over [N, P + R] with positions from the
/// mask (as generate() uses). Differentiable: run it under grad mode in the learner.
SequenceLogprobs sequence_logprobs(Transformer& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                                   const at::Tensor& response_ids, const at::Tensor& response_mask,
                                   const LogprobOptions& opts = {});

}  // namespace keel::models
