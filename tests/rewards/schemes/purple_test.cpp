// Tests of the discriminator reward and PURPLE κ-preconditioning (spec rewards.md A6).
#include "rewards/schemes/purple.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

TEST(Purple, WorkedExample) {
  // D = 0.75 -> −log(0.25) = 1.3862944; κ = 0.5 -> 0.6931472.
  auto r = discriminator_reward(testing::dt({0.75}));
  EXPECT_NEAR(r.item<double>(), 1.3862944, 1e-6);
  EXPECT_NEAR(purple_precondition(r, 0.5).item<double>(), 0.6931472, 1e-6);
  // Logit form: D = σ(log 3) = 0.75.
  EXPECT_NEAR(discriminator_reward_from_logits(testing::dt({std::log(3.0)})).item<double>(), 1.3862944, 1e-6);
}

TEST(Purple, KappaSchedules) {
  PurpleOptions o;
  o.kappa = 1.0;
  o.kappa_min = 0.25;
  o.decay_steps = 10;
  EXPECT_EQ(purple_kappa(5, o), 1.0);  // constant ignores kappa_min
  o.schedule = "linear";
  EXPECT_NEAR(purple_kappa(5, o), 0.625, 1e-12);
  EXPECT_NEAR(purple_kappa(50, o), 0.25, 1e-12);
  o.schedule = "exponential";
  EXPECT_NEAR(purple_kappa(5, o), 0.5, 1e-12);  // 1·(0.25)^(1/2)
  EXPECT_EQ(testing::read_yaml("  kappa: 1.5\n", o, read_purple_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
