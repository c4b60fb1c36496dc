// Tests for models/decode_session: multi-turn decoding keeps the LOG-PROB CONTRACT across turns
// (every sampled token's log-prob equals the teacher-forced one of the compacted conversation),
// the cache-reusing and recomputing modes sample the same tokens, rows are independent of each
// other, identical prompts share their blocks, and the cache grows past its first capacity.
#include "models/decode_session.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/logprobs.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

using testing::randomize;
using testing::tiny_config;

Transformer make_model(uint64_t seed, const std::string& type = "llama") {
  Transformer m(tiny_config(type));
  randomize(m, seed);
  return m;
}

struct Played {
  std::vector<std::vector<int64_t>> seq;            // per row: the whole conversation
  std::vector<std::vector<int64_t>> sampled_at;     // per row: positions (in seq) of sampled tokens
  std::vector<std::vector<float>> sampled_lp;       // their log-probs
  int64_t forwarded = 0;
};

/// Three turns; rows get observations of different lengths (row 1 none after turn 1; row 2 is
/// inactive in turn 2). Stop token 7 ends a turn early sometimes.
Played play(Transformer& m, bool reuse, const SamplingOptions& so, int64_t block_size = 16) {
  const std::vector<std::vector<int64_t>> prompts = {{5, 6, 9, 11}, {12, 3}, {20, 21, 22, 23, 24, 25}};
  DecodeSession s(m, prompts, so, reuse, block_size);
  Played p;
  p.sampled_at.resize(3);
  p.sampled_lp.resize(3);
  const std::vector<std::vector<bool>> active = {{true, true, true}, {true, true, false}, {true, true, true}};
  const std::vector<std::vector<std::vector<int64_t>>> obs = {
      {{30, 31, 32}, {}, {33}}, {{34}, {35, 36, 37, 38, 39}, {}}, {{}, {}, {}}};
  for (size_t t = 0; t < 3; ++t) {
    std::vector<size_t> before;
    for (int64_t i = 0; i < 3; ++i) before.push_back(s.sequence(i).size());
    const auto turn = s.generate_turn(active[t], 5);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(turn.tokens[i].size(), turn.logprobs[i].size());
      if (!active[t][i]) { EXPECT_TRUE(turn.tokens[i].empty()); }
      for (size_t j = 0; j < turn.tokens[i].size(); ++j) {
        p.sampled_at[i].push_back(static_cast<int64_t>(before[i] + j));
        p.sampled_lp[i].push_back(turn.logprobs[i][j]);
      }
    }
    s.append(obs[t]);
  }
  for (int64_t i = 0; i < 3; ++i) p.seq.push_back(s.sequence(i));
  p.forwarded = s.forwarded_tokens();
  return p;
}

// Over block sizes (observations and turns start and end inside blocks) and a sliding-window model
// (the paged cache holds each row's tokens at their own positions, so the window counts them).
TEST(DecodeSession, LogprobContractAcrossTurns) {
  for (int64_t bs : {1, 3, 16}) {
    for (int64_t window : {0, 3}) {
      SCOPED_TRACE("block " + std::to_string(bs) + " window " + std::to_string(window));
      auto c = tiny_config(window > 0 ? "mistral" : "llama");
      c.sliding_window = window;
      Transformer m(c);
      randomize(m, 3);
      SamplingOptions so;
      so.temperature = 0.8;
      so.seed = 17;
      so.stop_token_ids = {7};
      so.eos_token_ids = {2};
      const auto p = play(m, /*reuse=*/true, so, bs);
      // Teacher forcing over each row's compacted conversation: the first prompt token is the prompt.
      for (size_t i = 0; i < 3; ++i) {
        const auto& seq = p.seq[i];
        ASSERT_FALSE(p.sampled_at[i].empty());
        auto pids = torch::tensor(std::vector<int64_t>(seq.begin(), seq.begin() + 1), torch::kLong).unsqueeze(0);
        auto rids = torch::tensor(std::vector<int64_t>(seq.begin() + 1, seq.end()), torch::kLong).unsqueeze(0);
        LogprobOptions lo;
        lo.temperature = 0.8;
        const auto lp = sequence_logprobs(m, pids, torch::ones_like(pids), rids, torch::ones_like(rids), lo).logprobs[0];
        for (size_t k = 0; k < p.sampled_at[i].size(); ++k)
          EXPECT_NEAR(p.sampled_lp[i][k], lp[p.sampled_at[i][k] - 1].item<float>(), 1e-5) << "row " << i << " token " << k;
      }
    }
  }
}

// The G samples of one prompt prefill it once and share its blocks (copied on write when their
// turns diverge); each samples what it samples alone.
TEST(DecodeSession, IdenticalPromptsPrefillOnceAndShareTheirBlocks) {
  auto m = make_model(13);
  SamplingOptions so;
  so.seed = 2;
  so.eos_token_ids = {1000};
  const std::vector<int64_t> prompt = {4, 5, 6, 7, 8, 9, 10};  // 7 tokens: one full block of 4, one partial
  DecodeSession s(m, {prompt, prompt, prompt}, so, true, 4);
  EXPECT_EQ(s.stats().prefill_tokens, 7);
  EXPECT_EQ(s.stats().reused_tokens, 14);
  const auto turn = s.generate_turn({true, true, true}, 3);
  // Three rows x 3 tokens, counted by hand: the prompt's 2 blocks; the first token of each row goes
  // to position 7, in the shared partial block: rows 0 and 1 copy it, row 2 (its last holder) writes
  // in place (+2); the second goes to position 8, a new block per row (+3); the third sampled
  // token is fed at position 9, in those blocks. The full block stays shared: 7 blocks, not 9.
  EXPECT_EQ(s.forwarded_tokens(), 7 + 9);
  EXPECT_EQ(s.stats().peak_blocks, 2 + 2 + 3);
  for (int64_t r = 0; r < 3; ++r) {
    SamplingOptions one = so;
    one.first_row = r;
    DecodeSession alone(m, {prompt}, one, true, 4);
    EXPECT_EQ(alone.generate_turn({true}, 3).tokens[0], turn.tokens[static_cast<size_t>(r)]) << "row " << r;
  }
}

TEST(DecodeSession, RecomputingSamplesTheSameAndForwardsMore) {
  auto m = make_model(5, "qwen2");
  SamplingOptions so;
  so.temperature = 1.0;
  so.seed = 3;
  so.stop_token_ids = {7};
  const auto reused = play(m, true, so);
  const auto recomputed = play(m, false, so);
  EXPECT_EQ(reused.seq, recomputed.seq);
  for (size_t i = 0; i < 3; ++i)
    for (size_t k = 0; k < reused.sampled_lp[i].size(); ++k)
      EXPECT_NEAR(reused.sampled_lp[i][k], recomputed.sampled_lp[i][k], 1e-5);
  EXPECT_GT(recomputed.forwarded, reused.forwarded);
  // Reuse forwards every real token exactly once.
  int64_t total = 0;
  for (const auto& s : reused.seq) total += static_cast<int64_t>(s.size());
  EXPECT_EQ(reused.forwarded, total);
}

TEST(DecodeSession, RowsAreIndependentOfTheirNeighbours) {
  auto m = make_model(9);
  SamplingOptions so;
  so.seed = 11;
  so.first_row = 4;
  DecodeSession both(m, {{5, 6, 7}, {8, 9}}, so);
  const auto t2 = both.generate_turn({true, true}, 6);
  both.append({{10, 11}, {12}});
  const auto t2b = both.generate_turn({true, true}, 6);
  // Row 1 alone, as global row 5.
  so.first_row = 5;
  DecodeSession alone(m, {{8, 9}}, so);
  const auto t1 = alone.generate_turn({true}, 6);
  alone.append({{12}});
  const auto t1b = alone.generate_turn({true}, 6);
  EXPECT_EQ(t2.tokens[1], t1.tokens[0]);
  EXPECT_EQ(t2b.tokens[1], t1b.tokens[0]);
}

TEST(DecodeSession, CacheGrowsPastItsFirstCapacityAndErrors) {
  auto m = make_model(2);
  SamplingOptions so;
  so.greedy = true;
  so.eos_token_ids = {49};  // rarely drawn: long turns
  DecodeSession s(m, {{3, 4}}, so);
  for (int t = 0; t < 4; ++t) {
    s.generate_turn({true}, 20);
    s.append({{5, 6, 7, 8, 9, 10}});
  }
  EXPECT_GE(s.sequence(0).size(), 2u + 4u * 6u + 4u);
  EXPECT_THROW(s.generate_turn({true, true}, 3), c10::Error);
  EXPECT_THROW(s.append({}), c10::Error);
  EXPECT_THROW(DecodeSession(m, {{3}}, so, true, 0), c10::Error);
}

}  // namespace
}  // namespace keel::models
