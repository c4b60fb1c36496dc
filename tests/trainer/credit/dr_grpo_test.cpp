// Tests of the Dr. GRPO estimator (spec §2.2).
#include "trainer/credit/dr_grpo.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(DrGrpo, SpecWorkedExample) {
  // [1,0,0,1] − 0.5 → [0.5, −0.5, −0.5, 0.5], even with norm_by_std left on.
  const Mat m{{1, 1, 0}, {1, 0, 0}, {1, 1, 1}, {0, 1, 1}};
  const auto in = inputs(outcome_at_last({1, 0, 0, 1}, m), m, {2, 2, 2, 2});
  EXPECT_TRUE(close(advantage_dr_grpo(in, AdvantageOptions{}).advantages,
                    Mat{{0.5, 0.5, 0}, {-0.5, 0, 0}, {-0.5, -0.5, -0.5}, {0, 0.5, 0.5}}));
}

TEST(DrGrpo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 100; seed < 160; ++seed) {
    const auto b = random_batch(seed, true, seed % 2 == 0, seed % 3 == 0);
    AdvantageOptions o;
    o.singleton = "zero";
    const auto want = ref::broadcast(ref::grpo(ref::row_sums(b.r_tok), b.gid, 0, false, "zero"), b.mask);
    ASSERT_TRUE(close(advantage_dr_grpo(b.in(), o).advantages, want, 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
