// Tests of the RLOO estimator (spec §3.1).
#include "trainer/credit/rloo.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(Rloo, SpecWorkedExample) {
  // [1,0,0,1]: (R − 0.5)·4/3 → ±0.666667; an all-same group → 0.
  const Mat m(6, Vec{1});
  const auto in = inputs({{1}, {0}, {0}, {1}, {2}, {2}}, m, {0, 0, 0, 0, 5, 5});
  EXPECT_TRUE(close(advantage_rloo(in, AdvantageOptions{}).advantages,
                    Mat{{0.666667}, {-0.666667}, {-0.666667}, {0.666667}, {0}, {0}}));
}

TEST(Rloo, SingletonGroupIsAnError) {
  const Mat m(3, Vec{1});
  EXPECT_THROW(advantage_rloo(inputs({{1}, {0}, {1}}, m, {0, 0, 1}), AdvantageOptions{}), c10::Error);
}

TEST(Rloo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 200; seed < 260; ++seed) {
    const auto b = random_batch(seed, /*allow_singletons=*/false, seed % 2 == 0, seed % 3 == 0);
    const auto want = ref::broadcast(ref::rloo(ref::row_sums(b.r_tok), b.gid), b.mask);
    ASSERT_TRUE(close(advantage_rloo(b.in(), AdvantageOptions{}).advantages, want, 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
