// Tests of SPO win-rate rewards (spec §8.4).
#include "trainer/credit/spo_winrate.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(SpoWinrate, SpecWorkedExample) {
  // y1 ≻ y2, y1 ≻ y3, y2 ≻ y3 → r = [2/2, 1/2, 0/2] = [1, .5, 0] → GRPO: mean .5, std .5 → [1, 0, −1].
  const Mat m(3, Vec{1});
  auto in = inputs(m, m, {0, 0, 0});
  in.preference = [](int64_t a, int64_t b) { return a < b ? 1.0 : 0.0; };  // lower row index wins
  const auto out = advantage_spo_winrate(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{1.0}, {0.0}, {-1.0}}));
  EXPECT_EQ(out.metrics.at("spo/oracle_calls"), 3.0);  // G(G−1)/2
  // all ties → all .5 → zero advantage
  in.preference = [](int64_t, int64_t) { return 0.5; };
  EXPECT_TRUE(close(advantage_spo_winrate(in, AdvantageOptions{}).advantages, Mat{{0}, {0}, {0}}));
}

TEST(SpoWinrate, BothOrdersAreAveraged) {
  // P(0≻1) = .8 but P(1≻0) = .4 (position bias): P̂(0≻1) = (.8 + 1 − .4)/2 = .7 → r = [.7, .3].
  const Mat m(2, Vec{1});
  auto in = inputs(m, m, {0, 0});
  in.preference = [](int64_t a, int64_t) { return a == 0 ? 0.8 : 0.4; };
  AdvantageOptions o;
  o.spo.symmetric = false;
  int64_t calls = 0;
  EXPECT_TRUE(close(spo_win_rates(in.group_ids, in.preference, false, &calls), Vec{0.7, 0.3}));
  EXPECT_EQ(calls, 2);
  o.spo.base = "rloo";  // r − other = ±.4
  EXPECT_TRUE(close(advantage_spo_winrate(in, o).advantages, Mat{{0.4}, {-0.4}}));
}

TEST(SpoWinrate, RewardOrderIdenticalRewardsGiveExactlyZero) {
  // judge reward_order: P(a ≻ b) = 1 / .5 / 0 by R. Group 5: four 0.7s → every P = .5 → win rates
  // all .5 → a = 0 exactly (GRPO: std 0; RLOO: .5 − .5), float32 too. Group 2: R = [1, 0, .5] →
  // win rates [(1+1)/2, (0+0)/2, (0+1)/2] = [1, 0, .5] → GRPO mean .5, std .5 → [1, −1, 0];
  // RLOO: 1 − (0+.5)/2 = .75, 0 − .75 = −.75, .5 − .5 = 0. Oracle calls 6 + 3 = 9.
  const Mat m(7, Vec{1, 1});
  auto in = inputs(outcome_at_last({0.7, 1, 0.7, 0, 0.7, 0.5, 0.7}, m), m, {5, 2, 5, 2, 5, 2, 5});
  in.token_rewards = in.token_rewards.to(torch::kFloat);
  AdvantageOptions o;
  o.spo.judge = "reward_order";
  for (const char* base : {"grpo", "rloo"})
    for (bool norm : {true, false})
      for (bool symmetric : {true, false}) {
        o.spo.base = base;
        o.norm_by_std = norm;
        o.spo.symmetric = symmetric;
        const auto out = advantage_spo_winrate(in, o);
        const auto a = out.advantages.select(1, 0);
        for (int64_t i : {0, 2, 4, 6}) EXPECT_EQ(a[i].item<double>(), 0.0) << base << " norm " << norm << " row " << i;
        const bool grpo = std::string(base) == "grpo";
        const Vec want = grpo ? (norm ? Vec{1, -1, 0} : Vec{0.5, -0.5, 0}) : Vec{0.75, -0.75, 0};
        EXPECT_TRUE(close(a.index({torch::tensor({1, 3, 5}, torch::kLong)}), want, 1e-5)) << base << " norm " << norm;
        EXPECT_EQ(out.metrics.at("spo/oracle_calls"), symmetric ? 9.0 : 18.0);
      }
}

TEST(SpoWinrate, JudgeIsAModelUnlessRewardOrderIsNamed) {
  // judge none (default) needs preference; reward_order builds its own from R and ignores one
  // that is supplied (here an oracle that prefers the lower reward). R = [1, 0] → ±.707106.
  const Mat m(2, Vec{1});
  auto in = inputs(outcome_at_last({1, 0}, m), m, {0, 0});
  EXPECT_THROW(advantage_spo_winrate(in, AdvantageOptions{}), c10::Error);
  AdvantageOptions o;
  o.spo.judge = "reward_order";
  EXPECT_TRUE(close(advantage_spo_winrate(in, o).advantages, Mat{{0.707106}, {-0.707106}}));
  in.preference = [](int64_t a, int64_t b) { return a > b ? 1.0 : 0.0; };
  EXPECT_TRUE(close(advantage_spo_winrate(in, o).advantages, Mat{{0.707106}, {-0.707106}}));
  EXPECT_TRUE(close(advantage_spo_winrate(in, AdvantageOptions{}).advantages, Mat{{-0.707106}, {0.707106}}));
  const PreferenceOracle p = spo_reward_order_preference(vec({0.5, 0.5, 1.0}));
  EXPECT_EQ(p(0, 2), 0.0);
  EXPECT_EQ(p(2, 0), 1.0);
  EXPECT_EQ(p(0, 1), 0.5);
  o.spo.judge = "reward";
  EXPECT_THROW(advantage_spo_winrate(in, o), c10::Error);
}

TEST(SpoWinrate, SingletonGroupIsAnError) {
  const Mat m(1, Vec{1});
  auto in = inputs(m, m, {0});
  in.preference = [](int64_t, int64_t) { return 0.5; };
  EXPECT_THROW(advantage_spo_winrate(in, AdvantageOptions{}), c10::Error);
}

TEST(SpoWinrate, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 900; seed < 960; ++seed) {
    const auto b = random_batch(seed, false);
    std::mt19937 rng(seed);
    const size_t n = b.gid.size();
    Mat p(n, Vec(n, 0.5));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j) {
        p[i][j] = std::uniform_int_distribution<int>(0, 4)(rng) / 4.0;
        p[j][i] = 1.0 - p[i][j];
      }
    auto in = b.in();
    in.preference = [&](int64_t a, int64_t c) { return p[static_cast<size_t>(a)][static_cast<size_t>(c)]; };
    Vec win(n, 0.0);
    for (const auto& [g, rows] : ref::groups_of(b.gid))
      for (size_t i : rows) {
        for (size_t j : rows)
          if (j != i) win[i] += p[i][j];
        win[i] /= static_cast<double>(rows.size() - 1);
      }
    AdvantageOptions o;
    o.spo.symmetric = seed % 2 == 0;
    o.spo.base = seed % 3 == 0 ? "rloo" : "grpo";
    const Vec a = o.spo.base == "rloo" ? ref::rloo(win, b.gid) : ref::grpo(win, b.gid, o.eps, true);
    ASSERT_TRUE(close(advantage_spo_winrate(in, o).advantages, ref::broadcast(a, b.mask), 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
