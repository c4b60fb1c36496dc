// Tests of trainer/learner/dno.{h,cpp}: the DNO-Prct reference schedule, large-margin pair filter
// and replay quota (spec §8.3), on hand cases.
#include "trainer/learner/dno.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace keel::learner {
namespace {

TEST(Dno, ReferenceIsThePreviousIterateWhenRefreshing) {
  EXPECT_EQ(dno_reference_iterate(1, true), 1);
  EXPECT_EQ(dno_reference_iterate(3, true), 3);   // iteration 3 trains π_4 against π_3
  EXPECT_EQ(dno_reference_iterate(3, false), 1);  // plain DPO keeps the SFT reference
  EXPECT_FALSE(dno_refresh_reference(1, true));
  EXPECT_TRUE(dno_refresh_reference(2, true));
  EXPECT_FALSE(dno_refresh_reference(2, false));
  EXPECT_THROW(dno_reference_iterate(0, true), keel::Error);
}

TEST(Dno, LargeMarginPairSelection) {
  // 0: gold 6 (margin 2) → negatives with score ≤ 4: 2 (4), 3 (3), and 4 (auto-negative);
  // 1: student 5 (margin 1) → 2, 3, 4; 2..3 score < 5 are never positives; 4 is auto-negative (6).
  const std::vector<DnoCandidate> c = {{6, false, false}, {5, true, false}, {4, true, false}, {3, true, false},
                                       {6, true, true}};
  const std::vector<PreferencePair> want = {{0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}, {1, 4}};
  EXPECT_EQ(dno_select_pairs(c), want);
}

TEST(Dno, StudentCanBeatTeacherAndMarginsDependOnThePositive) {
  // 0: gold 4 (not a positive); 1: student 6 → beats gold (6 − 4 ≥ 1) and student 2 (5: 6 − 5 ≥ 1);
  // 2: student 5 → beats gold (5 − 4 ≥ 1), not student 1. A gold positive 6 vs a 5 student: margin 2 fails.
  const std::vector<DnoCandidate> c = {{4, false, false}, {6, true, false}, {5, true, false}};
  const std::vector<PreferencePair> want = {{1, 0}, {1, 2}, {2, 0}};
  EXPECT_EQ(dno_select_pairs(c), want);
  EXPECT_TRUE(dno_select_pairs({{6, false, false}, {5, true, false}}).empty());
  EXPECT_EQ(dno_select_pairs({{6, false, false}, {4, true, false}}), (std::vector<PreferencePair>{{0, 1}}));
}

TEST(Dno, ReplayQuotaDecays) {
  EXPECT_TRUE(dno_replay_counts(1, 100).empty());
  EXPECT_EQ(dno_replay_counts(4, 100), (std::vector<int64_t>{30, 15, 7}));  // 30%, 15%, 7.5% of 100
  EXPECT_EQ(dno_replay_counts(3, 1000, 0.2, 0.25), (std::vector<int64_t>{200, 50}));
  EXPECT_THROW(dno_replay_counts(2, 10, 1.5), keel::Error);
}

}  // namespace
}  // namespace keel::learner
