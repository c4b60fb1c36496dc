// Tests for trainer/learner/sequence_batch: micro_batches() (row-count and token-budget splits,
// hand-checked) and row_tokens().
#include "trainer/learner/sequence_batch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace keel::learner {
namespace {

using Ranges = std::vector<std::pair<int64_t, int64_t>>;

TEST(MicroBatches, FixedRowsWithoutABudget) {
  EXPECT_EQ(micro_batches({}, 0, 10, 4, 0), (Ranges{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_EQ(micro_batches({}, 8, 16, 4, 0), (Ranges{{8, 12}, {12, 16}}));
  EXPECT_EQ(micro_batches({}, 3, 3, 4, 0), Ranges{});
}

// Tokens 5 7 3 9 2 2 2 30 1, budget 12, at most 3 rows: 5+7 = 12 fits; 3+9 = 12; 2+2+2 (3 rows);
// 30 alone (longer than the budget); 1.
TEST(MicroBatches, TokenBudgetAndRowCap) {
  const auto tok = torch::tensor({5, 7, 3, 9, 2, 2, 2, 30, 1}, torch::kLong);
  EXPECT_EQ(micro_batches(tok, 0, 9, 3, 12), (Ranges{{0, 2}, {2, 4}, {4, 7}, {7, 8}, {8, 9}}));
  // Within a mini-batch [2, 6): 3+9 = 12, then 2+2.
  EXPECT_EQ(micro_batches(tok, 2, 6, 3, 12), (Ranges{{2, 4}, {4, 6}}));
  // A budget smaller than every row: one row each.
  EXPECT_EQ(micro_batches(tok, 0, 3, 3, 1), (Ranges{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_THROW(micro_batches(tok, 0, 10, 3, 12), c10::Error);  // row_tokens too short
  EXPECT_THROW(micro_batches(tok, 0, 9, 0, 12), c10::Error);   // no rows allowed
}

TEST(MicroBatches, RowTokensCountThePromptAndTheSeenResponse) {
  const auto pm = torch::tensor({0, 1, 1, 1, 1, 1}, torch::kLong).view({2, 3});
  const auto rm = torch::tensor({1, 0, 0, 0, 1, 1, 0, 0}, torch::kLong).view({2, 4});
  const auto seen = torch::tensor({1, 1, 1, 0, 1, 1, 0, 0}, torch::kLong).view({2, 4});
  EXPECT_TRUE(torch::equal(row_tokens(pm, rm, {}), torch::tensor({3, 5}, torch::kLong)));
  EXPECT_TRUE(torch::equal(row_tokens(pm, rm, seen), torch::tensor({5, 5}, torch::kLong)));
}

}  // namespace
}  // namespace keel::learner
