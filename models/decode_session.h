// Multi-turn decoding for agents and tool use: a batch of conversations that alternate the model's
// turns with appended text (tool results, environment observations), each row keeping its KV cache
// across turns — the cache is extended, not recomputed (or, with reuse_cache = false, recomputed
// from the whole conversation at every turn: the naive baseline the rollout's measurement compares
// against).
// Layout: one cache slot per column of a [N, S] attention mask. A row that does not take part in a
// decode step or an append leaves a hole (mask 0) in that column; positions come from the mask's
// cumulative sum, so holes are transparent and a row's tokens see exactly what the compacted
// sequence (prompt, then every later token in order) shows the learner — the LOG-PROB CONTRACT of
// generate.h holds per token (tests/models/decode_session_test.cpp).
// Sampling: temperature / top-k / top-p / greedy as generate(); row i draws from its own generator
// seeded from (seed, first_row + i), and only when it samples, so a row's tokens depend on its own
// conversation only.
// Deliberately not here: what the appended text is (trainer/env/episodes.h), chat templates,
// continuous batching (rows that finish a turn early keep their slot until the turn ends).
#pragma once

#include <cstdint>
#include <vector>

#include "models/generate.h"

namespace keel::models {

class DecodeSession {
 public:
  /// Prefills `prompts` (non-empty token lists). opts.max_new_tokens is unused (each turn names its
  /// own); eos_token_ids / stop_token_ids end a row's turn. Throws for a model with sliding-window
  /// layers (a hole would count against the window).
  DecodeSession(Transformer& model, const std::vector<std::vector<int64_t>>& prompts, const SamplingOptions& opts,
                bool reuse_cache = true);

  struct Turn {
    std::vector<std::vector<int64_t>> tokens;  ///< [N] the turn's tokens (the eos / stop token kept); {} if inactive
    std::vector<std::vector<float>> logprobs;  ///< [N] their log-probs (generate.h's convention)
    std::vector<FinishReason> reasons;         ///< [N] kEos / kStopToken / kLength (inactive rows: kLength)
  };

  /// One turn for the rows with active[i]: each samples until an eos or stop token or
  /// `max_new_tokens`. Every sampled token (the last included) enters the cache, so the next turn
  /// continues after it.
  Turn generate_turn(const std::vector<bool>& active, int64_t max_new_tokens);

  /// Appends `tokens[i]` to row i (empty = nothing), e.g. an observation and the opening of the
  /// next assistant turn.
  void append(const std::vector<std::vector<int64_t>>& tokens);

  int64_t rows() const { return static_cast<int64_t>(seq_.size()); }
  /// Row i's tokens in order, prompt first (what the learner's compacted sequence holds).
  const std::vector<int64_t>& sequence(int64_t i) const { return seq_[static_cast<size_t>(i)]; }
  /// Tokens run through the model so far (real tokens of prefills, appends and decode steps,
  /// recomputed prefixes included): the work the cache saves shows here.
  int64_t forwarded_tokens() const { return forwarded_; }

 private:
  void prefill_all();
  void ensure_capacity(int64_t extra);
  /// Runs ids [N, T] with new mask columns [N, T] through the model; rows with has_new[i] take
  /// the last column's logits.
  void feed(const at::Tensor& ids, const at::Tensor& new_mask, const at::Tensor& has_new);

  Transformer& model_;
  SamplingOptions opts_;
  bool reuse_;
  std::vector<std::vector<int64_t>> seq_;
  std::vector<at::Generator> gens_;
  KVCache cache_;
  at::Tensor mask_;    ///< [N, S] int64 on the model's device: the cached columns
  at::Tensor logits_;  ///< [N, V] fp32: each row's next-token logits
  bool stale_ = false;  ///< reuse_cache = false: appended tokens not yet in a cache
  int64_t forwarded_ = 0;
};

}  // namespace keel::models
