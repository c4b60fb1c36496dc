#include "trainer/learner/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace keel::learner {
namespace {

TEST(LrSchedule, HandCheckedValues) {
  LrScheduleOptions o{.lr = 1.0, .min_lr_ratio = 0.1, .warmup_steps = 4, .total_steps = 14, .schedule = "cosine"};
  EXPECT_DOUBLE_EQ(lr_at(o, 0), 0.0);   // 1 * 0/4
  EXPECT_DOUBLE_EQ(lr_at(o, 2), 0.5);   // 1 * 2/4
  EXPECT_DOUBLE_EQ(lr_at(o, 4), 1.0);   // p = 0: 0.1 + 0.9 * 0.5 * (1 + cos 0) = 1
  EXPECT_NEAR(lr_at(o, 9), 0.55, 1e-12);   // p = 0.5: 0.1 + 0.9 * 0.5 * (1 + 0) = 0.55
  EXPECT_NEAR(lr_at(o, 14), 0.1, 1e-12);   // p = 1: 0.1 + 0.9 * 0.5 * (1 - 1) = 0.1
  EXPECT_NEAR(lr_at(o, 100), 0.1, 1e-12);  // clamped past the end
  o.schedule = "linear";
  EXPECT_NEAR(lr_at(o, 9), 0.55, 1e-12);   // 0.1 + 0.9 * (1 - 0.5)
  EXPECT_NEAR(lr_at(o, 6), 0.82, 1e-12);   // p = 0.2: 0.1 + 0.9 * 0.8
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(lr_at(o, 1), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(o, 50), 1.0);
}

TEST(LrSchedule, CosineIsMonotoneAfterWarmup) {
  LrScheduleOptions o{.lr = 3e-4, .min_lr_ratio = 0.0, .warmup_steps = 0, .total_steps = 100, .schedule = "cosine"};
  double prev = lr_at(o, 0);
  EXPECT_DOUBLE_EQ(prev, 3e-4);
  for (int64_t s = 1; s <= 100; ++s) {
    const double v = lr_at(o, s);
    EXPECT_LE(v, prev + 1e-18);
    prev = v;
  }
  EXPECT_NEAR(prev, 0.0, 1e-18);
}

}  // namespace
}  // namespace keel::learner
