// Tests of the DPA directional reward (spec rewards.md B7).
#include "rewards/schemes/dpa.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Dpa, WorkedExample) {
  // θ = −15° -> v = (0.9659258, −0.2588190); r = (70, 40) -> 67.614806 − 10.352762 = 57.26205.
  DpaOptions o;
  o.angle_deg = -15;
  auto v = dpa_direction(o);
  EXPECT_TRUE(torch::allclose(v, dt({0.9659258, -0.2588190}), 0, 1e-7));
  EXPECT_NEAR(dpa_reward(dt({70, 40}).view({1, 2}), v).item<double>(), 57.26205, 1e-4);
  EXPECT_TRUE(torch::equal(dpa_prompt_weights(v), testing::lt({97, -26})));
  EXPECT_NEAR(dpa_to_helpsteer_scale(dt({90})).item<double>(), 4.0, 1e-12);
}

TEST(Dpa, ExplicitDirectionIsNormalised) {
  DpaOptions o;
  o.attributes = {"a", "b", "c"};
  o.direction = {3, 0, 4};
  auto v = dpa_direction(o);
  EXPECT_TRUE(torch::allclose(v, dt({0.6, 0, 0.8})));
  EXPECT_NEAR(dpa_reward(dt({10, 99, 5}).view({1, 3}), v).item<double>(), 10.0, 1e-12);
  EXPECT_TRUE(testing::read_yaml("  attributes: [a, b, c]\n  direction: [1, 2, 2]\n", o, read_dpa_options).empty());
  EXPECT_EQ(testing::read_yaml("  attributes: [a, b, c]\n  direction: [1, 2]\n", o, read_dpa_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
