// Tests of the ONI reward combination, per-episode counts and label cache (spec rewards.md B8a).
#include "rewards/schemes/oni.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(Oni, WorkedExample) {
  // c_ext 0.1, c_llm 0.4, r_env 0, r_int 1, second occurrence: 0.4·1/2³ = 0.05.
  OniOptions o;
  o.c_ext = 0.1;
  o.c_llm = 0.4;
  auto r = oni_reward(dt({0}).view({1, 1}), dt({1}).view({1, 1}), lt({2}).view({1, 1}), o);
  EXPECT_NEAR(r.item<double>(), 0.05, 1e-12);
}

TEST(Oni, EpisodeCountsResetAtEpisodeStart) {
  // messages a b a | a a  (episode restarts at step 3)
  auto ids = lt({0, 1, 0, 0, 0}).view({1, 5});
  auto start = torch::tensor({true, false, false, true, false}).view({1, 5});
  EXPECT_TRUE(torch::equal(oni_episode_counts(ids, start, {}), lt({1, 1, 2, 1, 2}).view({1, 5})));
}

TEST(Oni, EpisodeCountsMatchStreamingCounter) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 4, t = 1 + seed % 12;
    auto ids = torch::randint(0, 1 + seed % 4, {n, t}, torch::kLong);
    auto start = torch::rand({n, t}) > 0.7;
    auto mask = torch::rand({n, t}) > 0.2;
    auto fast = oni_episode_counts(ids, start, mask);
    OniMessageCounter counter;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < t; ++j) {
        if (start[i][j].item<bool>()) counter.reset(i);
        if (!mask[i][j].item<bool>()) {
          EXPECT_EQ(fast[i][j].item<int64_t>(), 0);
          continue;
        }
        EXPECT_EQ(fast[i][j].item<int64_t>(), counter.observe(i, "m" + std::to_string(ids[i][j].item<int64_t>())));
      }
  }
}

TEST(Oni, CounterStateRoundTripIsExact) {
  OniMessageCounter c;
  c.observe(0, "You hear a door.");
  c.observe(0, "You hear a door.");
  c.observe(3, "It's a wall/with a slash");
  c.observe(3, "");
  StateDict st;
  c.save_state(st, "oni/count/");
  OniMessageCounter d;
  d.load_state(st, "oni/count/");
  EXPECT_EQ(d.counts(), c.counts());
  EXPECT_EQ(d.observe(0, "You hear a door."), 3);
  StateDict empty;
  OniMessageCounter e;
  e.save_state(empty);
  OniMessageCounter f;
  f.load_state(empty);
  EXPECT_TRUE(f.counts().empty());
  EXPECT_THROW(f.load_state(StateDict{}), Error);
}

TEST(Oni, LabelCacheQueuesUnseenAndRoundTrips) {
  OniLabelCache cache;
  EXPECT_EQ(cache.reward("gold"), 0.0);
  EXPECT_EQ(cache.reward("gold"), 0.0);  // queued once
  EXPECT_EQ(cache.reward("rock"), 0.0);
  EXPECT_EQ(cache.num_pending(), 2u);
  cache.set_label("gold", 1.0);
  EXPECT_EQ(cache.reward("gold"), 1.0);
  EXPECT_EQ(cache.num_pending(), 1u);
  StateDict st;
  cache.save_state(st, "oni/cache/");
  OniLabelCache copy;
  copy.load_state(st, "oni/cache/");
  EXPECT_EQ(copy.labels(), cache.labels());
  EXPECT_EQ(copy.take_pending(10), std::vector<std::string>{"rock"});
  EXPECT_EQ(cache.take_pending(10), std::vector<std::string>{"rock"});
  OniOptions o;
  EXPECT_EQ(testing::read_yaml("  beta: -1\n", o, read_oni_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
