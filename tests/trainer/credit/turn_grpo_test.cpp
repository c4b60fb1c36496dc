// Tests of turn-level reward placement and the turn_grpo advantage (spec §10.2).
#include "trainer/credit/turn_grpo.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(TurnGrpo, SpecDenseRewardPlacement) {
  // Win with interm [1,0,1]: num = #positive = 2 → [.5, 0, .5] at the SEP positions.
  EXPECT_TRUE(close(place_turn_rewards({1, 3, 5}, {1, 0, 1}, 1.0, 4, true, 6), Vec{0, 0.5, 0, 0, 0, 0.5}));
  // Loss with interm [1,0,0], max_total_rewards 4 → [.25, 0, 0].
  EXPECT_TRUE(close(place_turn_rewards({1, 3, 5}, {1, 0, 0}, 0.0, 4, true, 6), Vec{0, 0.25, 0, 0, 0, 0}));
  // single: the final score at the last SEP; a truncated SEP (position ≥ T) is skipped.
  EXPECT_TRUE(close(place_turn_rewards({1, 3}, {}, 0.7, 4, false, 4), Vec{0, 0, 0, 0.7}));
  EXPECT_TRUE(close(place_turn_rewards({1, 3, 9}, {1, 1, 1}, 1.0, 4, true, 6), Vec{0, 1.0 / 3, 0, 1.0 / 3, 0, 0}));
}

TEST(TurnGrpo, HandExample) {
  // Two trajectories, γ = 1. A: turns 0,1,2 with rewards [.5, 0, .5] → G = [1, .5, .5];
  // B: turns 0,1 with [.25, 0] → G = [.25, 0]. Turn 0: [1, .25] → ±.707106; turn 1: [.5, 0] → ±.707106;
  // turn 2 reached by A only → 0. Layout per row: [act, SEP, obs] per turn; obs has turn −1, mask 0.
  const Mat m{{1, 1, 0, 1, 1, 0, 1, 1, 0}, {1, 1, 0, 1, 1, 0, 0, 0, 0}};
  auto in = inputs({{0, 0.5, 0, 0, 0, 0, 0, 0.5, 0}, {0, 0.25, 0, 0, 0, 0, 0, 0, 0}}, m, {1, 1});
  in.turn_ids = torch::tensor({0, 0, -1, 1, 1, -1, 2, 2, -1, 0, 0, -1, 1, 1, -1, -1, -1, -1}, torch::kLong).view({2, 9});
  const auto out = advantage_turn_grpo(in, AdvantageOptions{});
  const double a = 0.707106;
  EXPECT_TRUE(close(out.advantages, Mat{{a, a, 0, a, a, 0, 0, 0, 0}, {-a, -a, 0, -a, -a, 0, 0, 0, 0}}));
  EXPECT_TRUE(close(out.returns, Mat{{1, 1, 0, .5, .5, 0, .5, .5, 0}, {.25, .25, 0, 0, 0, 0, 0, 0, 0}}));
}

TEST(TurnGrpo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 1100; seed < 1160; ++seed) {
    const auto b = random_batch(seed, false, false, true);
    std::mt19937 rng(seed);
    const size_t n = b.gid.size(), t_len = b.mask[0].size();
    // turn ids: non-decreasing runs over the row, −1 on masked positions
    Mat tid(n, Vec(t_len, -1));
    for (size_t i = 0; i < n; ++i) {
      int turn = 0;
      for (size_t t = 0; t < t_len; ++t) {
        if (b.mask[i][t] == 0) continue;
        if (t > 0 && std::uniform_int_distribution<int>(0, 2)(rng) == 0) ++turn;
        tid[i][t] = turn;
      }
    }
    AdvantageOptions o;
    o.gamma = seed % 2 ? 1.0 : 0.7;
    o.norm_by_std = seed % 5 != 0;
    int k = 0;
    for (const auto& row : tid)
      for (double v : row) k = std::max(k, static_cast<int>(v) + 1);
    const auto K = static_cast<size_t>(k);
    Mat rt(n, Vec(K, 0.0)), pres(n, Vec(K, 0.0)), g(n, Vec(K, 0.0)), a(n, Vec(K, 0.0));
    for (size_t i = 0; i < n; ++i)
      for (size_t t = 0; t < t_len; ++t)
        if (tid[i][t] >= 0) {
          rt[i][static_cast<size_t>(tid[i][t])] += b.r_tok[i][t];
          pres[i][static_cast<size_t>(tid[i][t])] = 1;
        }
    for (size_t i = 0; i < n; ++i) {
      double run = 0;
      for (size_t j = K; j-- > 0;) g[i][j] = run = rt[i][j] + o.gamma * run;
    }
    for (const auto& [grp, rows] : ref::groups_of(b.gid))
      for (size_t j = 0; j < K; ++j) {
        Vec x;
        for (size_t i : rows)
          if (pres[i][j] != 0) x.push_back(g[i][j]);
        for (size_t i : rows)
          if (pres[i][j] != 0)
            a[i][j] = o.norm_by_std ? (g[i][j] - ref::mean_of(x)) / (ref::std_of(x) + o.eps) : g[i][j] - ref::mean_of(x);
      }
    Mat want = b.mask, want_ret = b.mask;
    for (size_t i = 0; i < n; ++i)
      for (size_t t = 0; t < t_len; ++t) {
        const bool on = tid[i][t] >= 0 && b.mask[i][t] != 0;
        want[i][t] = on ? a[i][static_cast<size_t>(tid[i][t])] : 0.0;
        want_ret[i][t] = on ? g[i][static_cast<size_t>(tid[i][t])] : 0.0;
      }
    auto in = b.in();
    in.turn_ids = mat(tid).to(torch::kLong);
    const auto out = advantage_turn_grpo(in, o);
    ASSERT_TRUE(close(out.advantages, want, 1e-9)) << "seed " << seed;
    ASSERT_TRUE(close(out.returns, want_ret, 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
