// Tests of the RetroAgent progress reward and its per-task baseline (spec rewards.md B8b).
#include "rewards/schemes/retro_agent.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(RetroAgent, WorkedExample) {
  // Failure with 2/5 subtasks, φ_prev 0.25 -> I = 0.15; success, φ_prev 0.25 -> I = 0.75.
  RetroOptions o;
  auto phi = retro_potential(dt({0, 1}), lt({2, 1}), lt({5, 5}), {}, o);
  EXPECT_TRUE(torch::allclose(phi, dt({0.4, 1.0})));
  auto r_int = retro_intrinsic(phi, dt({0.25, 0.25}), lt({0, 1}), o);
  EXPECT_TRUE(torch::allclose(r_int, dt({0.15, 0.75}), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(retro_reward(dt({0, 1}), r_int, o), dt({0.15, 1.75}), 0, 1e-12));
}

TEST(RetroAgent, EdgeCases) {
  RetroOptions o;
  // No subtasks or unparsable reflection -> φ = 0; binary_only -> φ = success.
  auto phi = retro_potential(dt({0, 0, 1}), lt({0, 3, 0}), lt({0, 4, 0}), torch::tensor({true, false, true}), o);
  EXPECT_TRUE(torch::allclose(phi, dt({0, 0, 1})));
  o.binary_only = true;
  EXPECT_TRUE(torch::allclose(retro_potential(dt({0, 1}), lt({3, 0}), lt({4, 0}), {}, o), dt({0, 1})));
  // Improvements only, group centring, clipping.
  RetroOptions g;
  g.group_relative = true;
  auto r = retro_intrinsic(dt({0.5, 0.1, 0.9}), dt({0.2, 0.2, 0.2}), lt({0, 0, 0}), g);
  // I = [0.3, 0, 0.7], mean 1/3.
  EXPECT_TRUE(torch::allclose(r, dt({0.3 - 1.0 / 3, -1.0 / 3, 0.7 - 1.0 / 3}), 0, 1e-12));
  g.clip_min = -0.1;
  g.clip_max = 0.2;
  EXPECT_TRUE(torch::allclose(retro_intrinsic(dt({0.5, 0.1, 0.9}), dt({0.2, 0.2, 0.2}), lt({0, 0, 0}), g),
                              dt({-0.0333333333333, -0.1, 0.2}), 0, 1e-9));
}

TEST(RetroAgent, GroupRelativeMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 9;
    auto phi = torch::rand({n}, torch::kFloat64);
    auto prev = torch::rand({n}, torch::kFloat64);
    auto gid = torch::randint(0, 1 + seed % 3, {n}, torch::kLong);
    RetroOptions o;
    o.group_relative = true;
    auto fast = retro_intrinsic(phi, prev, gid, o);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0, cnt = 0;
      for (int64_t j = 0; j < n; ++j)
        if (gid[j].item<int64_t>() == gid[i].item<int64_t>()) {
          sum += std::max(0.0, phi[j].item<double>() - prev[j].item<double>());
          cnt += 1;
        }
      EXPECT_NEAR(fast[i].item<double>(), std::max(0.0, phi[i].item<double>() - prev[i].item<double>()) - sum / cnt, 1e-12);
    }
  }
}

TEST(RetroAgent, BaselineRunningMaxEmaAndRoundTrip) {
  RetroOptions o;
  RetroTaskBaseline b;
  const std::vector<std::string> tasks{"alfworld/7", "alfworld/7", "webshop/2", "webshop/2"};
  EXPECT_TRUE(torch::equal(b.lookup(tasks), dt({0, 0, 0, 0})));
  b.update(tasks, dt({1, 0, 1, 1}), lt({0, 0, 1, 1}), o);  // rates 0.5 and 1.0
  EXPECT_TRUE(torch::equal(b.lookup(tasks), dt({0.5, 0.5, 1.0, 1.0})));
  b.update(tasks, dt({0, 0, 0, 0}), lt({0, 0, 1, 1}), o);  // running max keeps them
  EXPECT_TRUE(torch::equal(b.lookup(tasks), dt({0.5, 0.5, 1.0, 1.0})));
  RetroOptions ema = o;
  ema.baseline = "ema";
  b.update(tasks, dt({0, 0, 0, 0}), lt({0, 0, 1, 1}), ema);  // 0.9·0.5, 0.9·1.0
  EXPECT_TRUE(torch::allclose(b.lookup(tasks), dt({0.45, 0.45, 0.9, 0.9}), 0, 1e-15));
  StateDict st;
  b.save_state(st, "retro/");
  RetroTaskBaseline c;
  c.load_state(st, "retro/");
  EXPECT_EQ(c.values(), b.values());  // exact doubles
  EXPECT_TRUE(torch::equal(c.lookup({"alfworld/7", "unseen"}), dt({0.45, 0.0})));
  EXPECT_ANY_THROW(b.update({"a", "b"}, dt({1, 1}), lt({0, 0}), o));  // one group, two tasks
}

TEST(RetroAgent, Reader) {
  RetroOptions o;
  EXPECT_TRUE(testing::read_yaml("  clip_min: -1\n  clip_max: 1\n", o, read_retro_options).empty());
  ASSERT_TRUE(o.clip_min.has_value());
  EXPECT_EQ(*o.clip_max, 1.0);
  RetroOptions bad;
  EXPECT_EQ(testing::read_yaml("  clip_min: 2\n  clip_max: 1\n", bad, read_retro_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
