// place_sequence_rewards / snap_to_segment_ends: hand-checked placements with interior holes, and a
// random comparison against a direct loop.
#include "trainer/credit/token_placement.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::credit {
namespace {

TEST(TokenPlacement, SequenceRewardOnTheLastKeptTokenNotLengthMinusOne) {
  // Row 0: tokens 0-1 written, 2-3 an observation, 4 written, 5 padding: last kept = 4 (length - 1 = 2).
  // Row 1: plain, 3 tokens. Row 2: empty response.
  const auto mask = torch::tensor({1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}).reshape({3, 6});
  const auto got = place_sequence_rewards(torch::tensor({2.0f, -1.0f, 5.0f}), mask);
  const auto want = torch::tensor({0, 0, 0, 0, 2, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, torch::kFloat).reshape({3, 6});
  EXPECT_TRUE(torch::equal(got, want)) << got;
}

TEST(TokenPlacement, DenseRewardsInAHoleMoveToTheSegmentBeforeIt) {
  // Row 0: segments [0,1] and [4]; a step reward 0.5 at 1, 0.25 at 3 (in the hole) -> 1, 1.0 at 4.
  // Row 1: leading hole at 0 carrying 0.3 -> token 1; 0.2 at padding 5 -> token 3 (the last kept).
  const auto mask = torch::tensor({1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0}).reshape({2, 6});
  const auto dense = torch::tensor({0.0, 0.5, 0.0, 0.25, 1.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.2}, torch::kFloat).reshape({2, 6});
  const auto got = snap_to_segment_ends(dense, mask);
  const auto want = torch::tensor({0.0, 0.75, 0.0, 0.0, 1.0, 0.0, 0.0, 0.3, 0.0, 0.2, 0.0, 0.0}, torch::kFloat).reshape({2, 6});
  EXPECT_TRUE(torch::allclose(got, want)) << got;
  // Totals are kept: every reward lands somewhere in its row.
  EXPECT_TRUE(torch::allclose(got.sum(1), dense.sum(1)));
}

TEST(TokenPlacement, NarrowDenseRewardsArePaddedAndWideOnesMustBeZeroBeyond) {
  const auto mask = torch::ones({1, 4}, torch::kLong);
  EXPECT_TRUE(torch::equal(snap_to_segment_ends(torch::tensor({{1.0f, 2.0f}}), mask),
                           torch::tensor({{1.0f, 2.0f, 0.0f, 0.0f}})));
  EXPECT_THROW(snap_to_segment_ends(torch::tensor({{0.0f, 0.0f, 0.0f, 0.0f, 1.0f}}), mask), c10::Error);
  EXPECT_THROW(snap_to_segment_ends(torch::tensor({{1.0f}}), torch::zeros({1, 4}, torch::kLong)), c10::Error);
}

TEST(TokenPlacement, MatchesALoopReferenceOnRandomMasks) {
  for (int seed = 0; seed < 20; ++seed) {
    torch::manual_seed(seed);
    const auto mask = torch::rand({5, 9}) > 0.35;
    const auto r = torch::randn({5});
    const auto seq = place_sequence_rewards(r, mask);
    for (int64_t i = 0; i < 5; ++i) {
      int64_t last = -1;
      for (int64_t j = 0; j < 9; ++j)
        if (mask[i][j].item<bool>()) last = j;
      for (int64_t j = 0; j < 9; ++j)
        EXPECT_FLOAT_EQ(seq[i][j].item<float>(), j == last ? r[i].item<float>() : 0.0f) << seed;
    }
    const auto dense = torch::randn({5, 9}) * mask.any(1, true).to(torch::kFloat);
    const auto snapped = snap_to_segment_ends(dense, mask);
    EXPECT_TRUE(torch::allclose(snapped.sum(1), dense.sum(1), 1e-5, 1e-5)) << seed;
    EXPECT_EQ((snapped.abs() > 0).logical_and(mask.logical_not()).sum().item<int64_t>(), 0) << seed;
  }
}

}  // namespace
}  // namespace keel::credit
