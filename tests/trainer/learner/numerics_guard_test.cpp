#include "trainer/learner/numerics_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace keel::learner {
namespace {

TEST(NumericsGuard, SkipsThenRollsBackAfterKConsecutiveBadSteps) {
  using V = NumericsGuard::Verdict;
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  NumericsGuard g(3);
  EXPECT_EQ(g.check(1.0, 0.5), V::kOk);
  EXPECT_EQ(g.check(nan, 0.5), V::kSkip);
  EXPECT_EQ(g.check(1.0, inf), V::kSkip);
  EXPECT_EQ(g.check(1.0, 0.5), V::kOk);  // a good step resets the run of bad ones
  EXPECT_EQ(g.consecutive_bad(), 0);
  EXPECT_EQ(g.check(nan, nan), V::kSkip);
  EXPECT_EQ(g.check(-inf, 1.0), V::kSkip);
  EXPECT_EQ(g.check(nan, 1.0), V::kRollback);
  g.after_rollback();
  EXPECT_EQ(g.consecutive_bad(), 0);
  EXPECT_EQ(g.skipped_total(), 5);
  EXPECT_EQ(g.rollbacks(), 1);
}

}  // namespace
}  // namespace keel::learner
