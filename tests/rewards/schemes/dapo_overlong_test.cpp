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

TEST(DapoOverlong, MatchesALoopReference) {
  // The one implementation keel has (the trainer's overlong: section calls it too).
  for (uint64_t seed = 0; seed < 50; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    DapoOverlongOptions o;
    o.max_len = 100 + static_cast<double>(seed) * 37;
    o.cache_len = 1 + static_cast<double>(seed % 40);
    o.factor = 0.5 + 0.1 * static_cast<double>(seed % 7);
    const at::Tensor len = torch::randint(0, static_cast<int64_t>(o.max_len) + 10, {8}, torch::kLong);
    const at::Tensor got = dapo_overlong_penalty(len, o);
    for (int64_t i = 0; i < 8; ++i) {
      const double l = static_cast<double>(len[i].item<int64_t>());
      const double exp_len = o.max_len - o.cache_len;
      const double want = l > o.max_len ? -o.factor : l <= exp_len ? 0.0 : -(l - exp_len) / o.cache_len * o.factor;
      EXPECT_NEAR(got[i].item<double>(), want, 1e-12) << "seed " << seed;
    }
  }
}

TEST(DapoOverlong, RejectsABufferOutsideTheLength) {
  DapoOverlongOptions o;
  o.max_len = 100;
  o.cache_len = 0;
  EXPECT_THROW(dapo_overlong_penalty(testing::lt({10}), o), c10::Error);
  o.cache_len = 200;
  EXPECT_THROW(dapo_overlong_penalty(testing::lt({10}), o), c10::Error);
}

}  // namespace
}  // namespace keel::rewards
