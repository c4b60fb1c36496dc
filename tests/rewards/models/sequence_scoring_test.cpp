// Tests of rewards/models/sequence_scoring.{h,cpp}: batched, left-padded last-token read-outs equal
// the unpadded one-sequence-at-a-time forward (a slow loop reference) over random seeds, lengths
// and chunk sizes; left truncation.
#include "rewards/models/sequence_scoring.h"

#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/models/test_util.h"

namespace keel::rewards {
namespace {

using models::testing::randomize;
using models::testing::tiny_config;

std::vector<std::vector<int64_t>> random_sequences(std::mt19937& gen, int n, int max_len, int64_t vocab) {
  std::uniform_int_distribution<int> len(1, max_len);
  std::uniform_int_distribution<int64_t> tok(0, vocab - 1);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(n));
  for (auto& s : out) {
    s.resize(static_cast<size_t>(len(gen)));
    for (auto& t : s) t = tok(gen);
  }
  return out;
}

/// Slow reference: each sequence alone (no padding), the head at its last position.
torch::Tensor one_by_one(models::Transformer& m, const std::vector<std::vector<int64_t>>& seqs, bool logits) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> rows;
  for (const auto& s : seqs) {
    const auto ids = torch::tensor(s, torch::kLong).unsqueeze(0);  // [1, L]
    const auto h = m.forward_hidden(ids);                          // [1, L, H]
    const auto last = h.narrow(1, h.size(1) - 1, 1);
    rows.push_back(logits ? m.lm_logits(last).reshape({-1}) : m.rewards(last).reshape({-1}));
  }
  return torch::stack(rows).squeeze(-1).to(torch::kFloat);
}

TEST(SequenceScoring, RewardsMatchOneByOneForwardOverRandomBatches) {
  models::HeadOptions heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  models::Transformer m(tiny_config(), heads);
  randomize(m, 11);
  m.train(false);
  for (int seed = 0; seed < 50; ++seed) {
    std::mt19937 gen(seed);
    const int n = 1 + seed % 7;
    const auto seqs = random_sequences(gen, n, seed % 5 == 0 ? 1 : 12, 50);  // every 5th: all length 1
    const auto want = one_by_one(m, seqs, /*logits=*/false);
    const int64_t bs = 1 + seed % 4;
    const auto got = score_sequences(m, seqs, bs, /*pad_id=*/seed % 3);
    ASSERT_EQ(got.sizes(), torch::IntArrayRef({n})) << "seed " << seed;
    EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << "seed " << seed << "\n" << got << "\n" << want;
  }
}

TEST(SequenceScoring, LogitsMatchOneByOneForwardOverRandomBatches) {
  models::Transformer m(tiny_config());
  randomize(m, 12);
  m.train(false);
  for (int seed = 0; seed < 50; ++seed) {
    std::mt19937 gen(100 + seed);
    const int n = 1 + seed % 6;
    const auto seqs = random_sequences(gen, n, 10, 50);
    const auto want = one_by_one(m, seqs, /*logits=*/true);
    const auto got = next_token_logits(m, seqs, 1 + seed % 3);
    ASSERT_EQ(got.sizes(), torch::IntArrayRef({n, 50})) << "seed " << seed;
    EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-4)) << "seed " << seed;
  }
}

TEST(SequenceScoring, LastTokenRewardsAreDifferentiable) {
  models::HeadOptions heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  models::Transformer m(tiny_config(), heads);
  randomize(m, 13);
  const auto r = last_token_rewards(m, {{1, 2, 3}, {4, 5}});
  ASSERT_EQ(r.sizes(), torch::IntArrayRef({2}));
  r.sum().backward();
  const auto g = m.named_parameters().at("score.weight").grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().sum().item<double>(), 0.0);
}

TEST(SequenceScoring, ChecksHeadsAndInputs) {
  models::Transformer lm(tiny_config());
  EXPECT_THROW(last_token_rewards(lm, {{1, 2}}), c10::Error);  // no reward head
  models::HeadOptions heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  models::Transformer rm(tiny_config(), heads);
  EXPECT_THROW(next_token_logits(rm, {{1, 2}}, 1), c10::Error);  // no LM head
  EXPECT_THROW(score_sequences(rm, {{1, 2}}, 0), c10::Error);    // batch_size 0
  EXPECT_EQ(score_sequences(rm, {}, 4).numel(), 0);
}

TEST(SequenceScoring, KeepLastTokens) {
  const std::vector<int64_t> ids = {1, 2, 3, 4, 5};
  EXPECT_EQ(keep_last_tokens(ids, 3), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(keep_last_tokens(ids, 5), ids);
  EXPECT_EQ(keep_last_tokens(ids, 9), ids);
  EXPECT_EQ(keep_last_tokens(ids, 0), ids);
}

}  // namespace
}  // namespace keel::rewards
