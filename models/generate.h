// The rollout generation engine: batched sampling with a KV cache, prompts of different lengths in
// one left-padded batch, per-sequence stop (EOS, stop token ids, max_new_tokens), temperature,
// top-k, top-p, greedy; seeded and reproducible. Returns response ids, the log-prob of every
// sampled token and finish reasons.
// Log-probs are those of the temperature-scaled, UNtruncated distribution — log_softmax(logits / T)
// — which is what sequence_logprobs() (logprobs.h) recomputes; at T = 1 without truncation they
// are the model's own log-probs. [interp] With top-k / top-p the token is drawn from the truncated
// distribution but its log-prob is still reported under the untruncated one, so that sampler and
// learner agree; the gap is the usual truncation off-policyness.
// Deliberately not here: tokenization, stop strings, prompt/response bookkeeping of the
// RolloutBatch, continuous batching (finished rows keep their slot until the whole batch ends).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/transformer.h"

namespace keel::models {

enum class FinishReason { kEos, kStopToken, kLength };
/// "eos" / "stop_token" / "length".
const char* finish_reason_name(FinishReason r);

struct SamplingOptions {
  int64_t max_new_tokens = 64;
  /// Per-row limits (size N): row i stops with kLength after row_max_new_tokens[i] tokens (then
  /// max_new_tokens is not used). Empty = max_new_tokens for every row.
  std::vector<int64_t> row_max_new_tokens;
  double temperature = 1.0;  ///< <= 0 means greedy
  int64_t top_k = 0;         ///< keep the k most likely tokens (ties kept); 0 = off
  double top_p = 1.0;        ///< keep the smallest set with mass >= top_p; 1 = off
  bool greedy = false;       ///< argmax; log-probs then use temperature 1 unless temperature > 0
  /// Tokens that end a sequence with reason kEos; empty = the model config's eos_token_ids.
  std::vector<int64_t> eos_token_ids;
  std::vector<int64_t> stop_token_ids;  ///< also end a sequence (reason kStopToken); the token is kept
  int64_t pad_token_id = 0;             ///< fills response_ids after a sequence ends (and left-pads prompts)
  /// Row i draws its uniforms from its own torch::Generator seeded from (seed, i), so a row's sample
  /// depends only on its prompt, its row index and the seed — not on the other rows.
  uint64_t seed = 0;
  /// Row i of this call draws as row first_row + i would: a batch split into chunks, or across
  /// data-parallel ranks, samples exactly what one call over all rows would.
  int64_t first_row = 0;
};

struct GenerateOutput {
  at::Tensor prompt_ids;     ///< [N, P] left-padded with pad_token_id
  at::Tensor prompt_mask;    ///< [N, P] 1 real / 0 pad
  at::Tensor response_ids;   ///< [N, R] right-padded with pad_token_id; R = longest response
  at::Tensor response_mask;  ///< [N, R] 1 for generated tokens, the stop token included
  at::Tensor logprobs;       ///< [N, R] fp32 log-prob of each sampled token (see header), 0 at padding
  std::vector<FinishReason> finish_reasons;  ///< [N]
};

/// Left-pads token lists: {ids [N, P] int64, mask [N, P] int64}, P = longest prompt. Empty prompts are errors.
std::pair<at::Tensor, at::Tensor> left_pad(const std::vector<std::vector<int64_t>>& prompts, int64_t pad_token_id);

/// prompt_ids [N, P] left-padded, prompt_mask [N, P] (last column all 1). Runs under no-grad on the
/// model's device.
GenerateOutput generate(Transformer& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const SamplingOptions& opts);
GenerateOutput generate(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                        const SamplingOptions& opts);

/// Each row's max_new_tokens (row_max_new_tokens, checked against n rows, or max_new_tokens).
std::vector<int64_t> row_limits(const SamplingOptions& opts, int64_t n);

/// The CPU generator row `row` draws its uniforms from under `seed` (SamplingOptions::seed and
/// first_row + i): generate() and DecodeSession share it, so their rows sample alike.
at::Generator row_generator(uint64_t seed, int64_t row);
/// A uniform double in [0, 1) from `g` (53 random bits).
double next_uniform(at::Generator& g);

/// The reported log-probs of sampled tokens [N] for logits [N, V]: log_softmax(logits / T) at
/// each token, T = opts.temperature, or 1 when greedy (temperature <= 0); see the header comment.
/// What generate(), the paged engine and DecodeSession report.
at::Tensor sampled_logprobs(const at::Tensor& logits, const at::Tensor& tokens, const SamplingOptions& opts);

/// One sampling step on fp32 logits [N, V]: temperature, top-k, top-p, then inverse-CDF sampling
/// with uniforms [N] (CPU double, in [0, 1)). Returns tokens [N] int64. Exposed for tests.
at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& uniforms, const SamplingOptions& opts);

}  // namespace keel::models
