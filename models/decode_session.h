// Multi-turn decoding for agents and tool use: a batch of conversations that alternate the model's
// turns with appended text (tool results, environment observations), each row keeping its keys
// and values across turns in the paged KV cache (paged_kv.h, the rollout engine's): a turn's
// tokens and an appended observation extend the row's blocks, nothing is recomputed (or, with
// reuse_cache = false, every row is recomputed from its whole conversation at every turn: the
// naive baseline the rollout's measurement compares against). Identical prompts (the G samples
// of one prompt) prefill once and share their blocks, copied on write. Positions are the rows' own
// (no padding inside a row), so the LOG-PROB CONTRACT of generate.h holds per token against the
// compacted sequence (prompt, then every later token in order) the learner sees, sliding windows
// included (tests/models/decode_session_test.cpp). The pool starts small and doubles when full.
// Sampling: temperature / top-k / top-p / greedy as generate(); row i draws from its own generator
// seeded from (seed, first_row + i), and only when it samples, so a row's tokens depend on its own
// conversation only.
// Deliberately not here: what the appended text is (trainer/env/episodes.h), chat templates,
// continuous batching (rows that finish a turn early keep their slot until the turn ends).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/generate.h"
#include "models/rollout_engine.h"

namespace keel::models {

class DecodeSession {
 public:
  /// Prefills `prompts` (non-empty token lists). opts.max_new_tokens is unused (each turn names its
  /// own); eos_token_ids / stop_token_ids end a row's turn. block_size: tokens per KV block.
  DecodeSession(Transformer& model, const std::vector<std::vector<int64_t>>& prompts, const SamplingOptions& opts,
                bool reuse_cache = true, int64_t block_size = 16);
  ~DecodeSession();
  DecodeSession(const DecodeSession&) = delete;
  DecodeSession& operator=(const DecodeSession&) = delete;

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

  int64_t rows() const;
  /// Row i's tokens in order, prompt first (what the learner's compacted sequence holds).
  const std::vector<int64_t>& sequence(int64_t i) const;
  /// Tokens run through the model so far (prefills, appends and decode steps, recomputed
  /// conversations included; a shared prompt counts once): the work the cache saves shows here.
  int64_t forwarded_tokens() const;
  /// The paged cache's figures (peak blocks, block bytes, prefill and decode tokens).
  const EngineStats& stats() const;

 private:
  struct Paged;  // rollout state over the paged cache (decode_session.cpp)
  void prefill(const std::vector<size_t>& rows);
  void recompute_all();

  Transformer& model_;
  SamplingOptions opts_;
  bool reuse_;
  std::vector<at::Generator> gens_;
  std::unique_ptr<Paged> p_;
  bool stale_ = false;  ///< reuse_cache = false: appended tokens not yet in a cache
};

}  // namespace keel::models
