// Tests of DAPO's soft overlong penalty (spec rewards.md A5b).
#include "rewards/schemes/dapo_overlong.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

TEST(DapoOverlong, WorkedExample) {
  // L_max 20480, L_cache 4096, L_exp 16384: 16000 -> 0; 18432 -> −2048/4096 = −0.5; 20480 -> −1.
  auto p = dapo_overlong_penalty(testing::lt({16000, 16384, 18432, 20480, 30000}), {});
  EXPECT_TRUE(torch::allclose(p, testing::dt({0, 0, -0.5, -1, -1})));
  DapoOverlongOptions half;
  half.factor = 0.5;
  EXPECT_NEAR(dapo_overlong_penalty(testing::lt({18432}), half).item<double>(), -0.25, 1e-12);
  EXPECT_EQ(testing::read_yaml("  cache_len: 30000\n", half, read_dapo_overlong_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
