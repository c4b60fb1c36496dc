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
  EXPECT_TRUE(std::isnan(g.last_bad_loss()));
  EXPECT_EQ(g.last_bad_grad_norm(), 1.0);
  g.after_rollback();
  EXPECT_EQ(g.consecutive_bad(), 0);
  EXPECT_EQ(g.skipped_total(), 5);
  EXPECT_EQ(g.rollbacks(), 1);
}

// max_rollbacks bounds the rollbacks with no finite step between them; a finite step starts the
// count again (one bad batch is not a diverging run).
TEST(NumericsGuard, BoundsTheRollbacksWithoutAFiniteStep) {
  const double nan = std::nan("");
  NumericsGuard g(1, 2);
  EXPECT_EQ(g.check(nan, 1.0), NumericsGuard::Verdict::kRollback);
  EXPECT_TRUE(g.may_roll_back());
  g.after_rollback();
  EXPECT_EQ(g.check(nan, 1.0), NumericsGuard::Verdict::kRollback);
  EXPECT_TRUE(g.may_roll_back());
  g.after_rollback();
  EXPECT_EQ(g.rollbacks_in_a_row(), 2);
  EXPECT_EQ(g.check(nan, 1.0), NumericsGuard::Verdict::kRollback);
  EXPECT_FALSE(g.may_roll_back());
  EXPECT_EQ(g.check(1.0, 1.0), NumericsGuard::Verdict::kOk);  // had it recovered instead
  EXPECT_EQ(g.rollbacks_in_a_row(), 0);
  EXPECT_TRUE(g.may_roll_back());
  EXPECT_EQ(g.rollbacks(), 2);
}

}  // namespace
}  // namespace keel::learner
