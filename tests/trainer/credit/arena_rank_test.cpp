// Tests of the ArenaRL tournament (spec §9).
#include "trainer/credit/arena_rank.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

/// A scripted judge: per unordered pair, the k-th call returns the k-th scripted (score_x, score_y).
struct ScriptedJudge {
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, double>>> script;  // key (x, y), x < y
  std::map<std::pair<int64_t, int64_t>, size_t> used;
  void add(int64_t x, int64_t y, double sx, double sy) {
    if (x > y) {
      std::swap(x, y);
      std::swap(sx, sy);
    }
    script[{x, y}].push_back({sx, sy});
  }
  PairJudge fn() {
    return [this](int64_t a, int64_t b) -> std::pair<double, double> {
      const bool flip = a > b;
      const std::pair<int64_t, int64_t> key = flip ? std::make_pair(b, a) : std::make_pair(a, b);
      const auto& v = script.at(key);
      const auto s = v.at(used[key]++);
      return flip ? std::make_pair(s.second, s.first) : s;
    };
  }
};

TEST(ArenaRank, SpecWorkedExample) {
  // Rows: a (anchor) = 0, b = 1, c = 2, d = 3. Seeding: b 7.0 vs a 6.0, c 5.0 vs a 6.5, d 8.0 vs a 5.5
  // → s_anc = 6.0 → seeds d(8) b(7) a(6) c(5). Round 1: d vs c 8.2 : 5.0 → d; b vs a 6.8 : 7.0 → a.
  // Final d vs a 7.5 : 7.1 → d. Ranks d 0, a 1, b (avg 6.9) 2, c (avg 5.0) 3.
  // Rewards [d,a,b,c] = [1, 2/3, 1/3, 0]: mean .5, unbiased std .430331 → ±1.161892, ±.387297.
  ScriptedJudge j;
  j.add(1, 0, 7.0, 6.0);
  j.add(2, 0, 5.0, 6.5);
  j.add(3, 0, 8.0, 5.5);
  j.add(3, 2, 8.2, 5.0);
  j.add(1, 0, 6.8, 7.0);
  j.add(3, 0, 7.5, 7.1);
  const Mat m(4, Vec{1, 1});
  auto in = inputs(m, m, {5, 5, 5, 5});
  in.pair_judge = j.fn();
  in.anchor_mask = torch::tensor({true, false, false, false});
  const auto out = advantage_arena_rank(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages.select(1, 0), Vec{0.387297, -0.387297, -1.161892, 1.161892}));
  EXPECT_EQ(out.metrics.at("arena/judge_calls"), 6.0);  // 2N − 2
  // population std: ±1.341641, ±.447214
  j.used.clear();
  AdvantageOptions pop;
  pop.arena.std = "population";
  EXPECT_TRUE(close(advantage_arena_rank(in, pop).advantages.select(1, 0), Vec{0.447212, -0.447212, -1.341637, 1.341637}));
}

TEST(ArenaRank, ByesForTopSeedsWhenNotAPowerOfTwo) {
  // N = 3 with quality-ordered scores: seeds 1 (row 2), 2 (row 0 = anchor), 3 (row 1). Bracket of 4:
  // 1 vs (4 = bye), 2 vs 3 → final 1 vs winner. Calls: 2 seeding + 1 + 1 = 4 = 2N − 2.
  const std::vector<double> q{0.5, 0.1, 0.9};
  int64_t calls = 0;
  PairJudge judge = [&](int64_t a, int64_t b) {
    ++calls;
    return std::make_pair(q[static_cast<size_t>(a)], q[static_cast<size_t>(b)]);
  };
  const auto t = arena_single_elimination({0, 1, 2}, 0, judge);
  EXPECT_EQ(t.seed, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(t.rank, (std::vector<double>{1, 2, 0}));
  EXPECT_EQ(t.round_out, (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(calls, 4);
}

TEST(ArenaRank, TiedMatchesRankAsTies) {
  // The spec sent an exact tie to the better seed (= the earlier row), ranking [0, 1]. Ties as
  // ties: the seed only places the bracket; both rows share places 0 and 1 → rank .5 each.
  PairJudge judge = [](int64_t, int64_t) { return std::make_pair(1.0, 1.0); };
  const auto t = arena_single_elimination({10, 11}, 0, judge);
  EXPECT_EQ(t.seed, (std::vector<int64_t>{1, 2}));  // equal seeding scores: earlier position first
  EXPECT_EQ(t.round_out, (std::vector<int64_t>{2, 1}));  // the bracket still sends one on ...
  EXPECT_EQ(t.depth, (std::vector<int64_t>{1, 1}));      // ... without credit for the tie
  EXPECT_EQ(t.rank, (std::vector<double>{0.5, 0.5}));
  const Mat m(2, Vec{1});
  auto in = inputs(m, m, {0, 0});
  in.pair_judge = judge;
  EXPECT_EQ(advantage_arena_rank(in, AdvantageOptions{}).advantages.abs().max().item<double>(), 0.0);
}

TEST(ArenaRank, PerfectJudgeRanksByQualityOverRandomGroups) {
  // A judge that scores every trajectory by a hidden quality: seeds, bracket and ranks must all
  // follow the quality order, for any N (byes included) and any anchor.
  for (uint32_t seed = 0; seed < 60; ++seed) {
    std::mt19937 rng(seed);
    const int n = std::uniform_int_distribution<int>(2, 11)(rng);
    std::vector<double> q(static_cast<size_t>(n));
    for (auto& v : q) v = std::uniform_real_distribution<double>(0, 10)(rng);
    std::vector<int64_t> rows(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
    const size_t anchor = static_cast<size_t>(std::uniform_int_distribution<int>(0, n - 1)(rng));
    int64_t calls = 0;
    PairJudge judge = [&](int64_t a, int64_t b) {
      ++calls;
      return std::make_pair(q[static_cast<size_t>(a)], q[static_cast<size_t>(b)]);
    };
    const auto t = arena_single_elimination(rows, anchor, judge);
    EXPECT_EQ(calls, 2 * n - 2) << "seed " << seed;
    for (int i = 0; i < n; ++i) {
      int64_t better = 0;
      for (int j = 0; j < n; ++j) better += q[static_cast<size_t>(j)] > q[static_cast<size_t>(i)];
      EXPECT_EQ(t.rank[static_cast<size_t>(i)], static_cast<double>(better)) << "seed " << seed << " row " << i;
      EXPECT_EQ(t.seed[static_cast<size_t>(i)], better + 1) << "seed " << seed;
    }
  }
}

TEST(ArenaRank, NoisyJudgeAdvantagesMatchLoopReference) {
  for (uint32_t seed = 100; seed < 160; ++seed) {
    auto b = random_batch(seed, false);
    std::mt19937 rng(seed);
    PairJudge judge = [&](int64_t, int64_t) {
      std::uniform_int_distribution<int> d(0, 4);  // coarse scores → frequent ties
      return std::make_pair(static_cast<double>(d(rng)), static_cast<double>(d(rng)));
    };
    auto in = b.in();
    in.pair_judge = judge;
    const auto out = advantage_arena_rank(in, AdvantageOptions{});
    // Rebuild with the same random stream to get the tournaments, then the loop formula.
    rng.seed(seed);
    Vec want(b.gid.size(), 0.0);
    for (const auto& [g, rows_sz] : ref::groups_of(b.gid)) {
      const std::vector<int64_t> rows(rows_sz.begin(), rows_sz.end());
      const auto t = arena_single_elimination(rows, 0, judge);
      // Fractional ranks: in [0, k−1], multiples of 1/2, summing to k(k−1)/2 like a permutation.
      const double k = static_cast<double>(rows.size());
      ASSERT_DOUBLE_EQ(std::accumulate(t.rank.begin(), t.rank.end(), 0.0), k * (k - 1) / 2);
      for (double rk : t.rank) ASSERT_TRUE(rk >= 0 && rk <= k - 1 && 2 * rk == std::floor(2 * rk)) << rk;
      Vec r;
      for (double rk : t.rank) r.push_back(1.0 - rk / (k - 1));
      const double mu = ref::mean_of(r), sd = ref::std_of(r);
      const bool flat = std::all_of(r.begin(), r.end(), [&](double v) { return v == r[0]; });
      for (size_t j = 0; j < rows.size(); ++j) want[static_cast<size_t>(rows[j])] = flat ? 0.0 : (r[j] - mu) / (sd + 1e-6);
    }
    ASSERT_TRUE(close(out.advantages, ref::broadcast(want, b.mask), 1e-9)) << "seed " << seed;
  }
}

/// Advantages of one group under arena.judge reward_order, rows 0..N−1, anchor = row 0.
at::Tensor reward_order_advantages(const Vec& r, const std::string& std_kind = "unbiased") {
  const Mat m(r.size(), Vec{1});
  auto in = inputs(outcome_at_last(r, m), m, std::vector<int64_t>(r.size(), 0));
  AdvantageOptions o;
  o.arena.judge = "reward_order";
  o.arena.std = std_kind;
  return advantage_arena_rank(in, o).advantages.select(1, 0);
}

TEST(ArenaRank, RewardOrderJudgeScoresOnePointPerDirection) {
  // P(a ≻ b) = 1 / .5 / 0 by reward; both directions summed: (2, 0), (1, 1), (0, 2).
  const PairJudge j = arena_reward_order_judge(vec({0.5, 0.5, 1.0}));
  EXPECT_EQ(j(0, 2), std::make_pair(0.0, 2.0));
  EXPECT_EQ(j(2, 0), std::make_pair(2.0, 0.0));
  EXPECT_EQ(j(0, 1), std::make_pair(1.0, 1.0));
}

TEST(ArenaRank, RewardOrderIdenticalRewardsGiveExactlyZero) {
  // Issue: identical rewards used to rank by row position, e.g. N = 4 → [1.16, .39, −.39, −1.16].
  // Every match is (1, 1): one tie class, ranks all (N−1)/2, r all .5 → a = 0 exactly, for
  // powers of two and with byes (N = 3, 5, 6), in float32, whichever row is the anchor.
  for (int64_t n : {2, 3, 4, 5, 6, 8}) {
    const Mat m(static_cast<size_t>(2 * n), Vec{1, 0});
    std::vector<int64_t> gid;
    Vec r;
    for (int64_t i = 0; i < 2 * n; ++i) {  // two interleaved groups: 0.7 ×n and −0.3 ×n
      gid.push_back(i % 2);
      r.push_back(i % 2 ? -0.3 : 0.7);
    }
    auto in = inputs(outcome_at_last(r, m), m, gid);
    in.token_rewards = in.token_rewards.to(torch::kFloat);
    in.anchor_mask = torch::zeros({2 * n}, torch::kBool);
    in.anchor_mask[2 * n - 1] = true;  // last row of group 1
    in.anchor_mask[2 * (n / 2)] = true;  // a middle row of group 0
    AdvantageOptions o;
    o.arena.judge = "reward_order";
    const auto out = advantage_arena_rank(in, o);
    EXPECT_EQ(out.advantages.abs().max().item<double>(), 0.0) << "N " << n;
    EXPECT_EQ(out.metrics.at("arena/judge_calls"), 2.0 * (2 * n - 2)) << "N " << n;
    std::vector<int64_t> rows(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
    const auto t = arena_single_elimination(rows, 1, arena_reward_order_judge(torch::full({n}, 0.7)));
    EXPECT_EQ(t.rank, std::vector<double>(static_cast<size_t>(n), (static_cast<double>(n) - 1) / 2)) << "N " << n;
  }
}

TEST(ArenaRank, RewardOrderTwoLevelsTieWithinEachLevel) {
  // R = [1, 1, 0, 0], anchor row 0. Seeding vs the anchor: row 1 (1, 1) tie, rows 2, 3 (0, 2)
  // → scores [5/3, 1, 0, 0] → seeds [1, 2, 3, 4]. Round 1: 1v4 = row 0 vs row 3 (2, 0), 2v3 =
  // row 1 vs row 2 (2, 0). Final row 0 vs row 1 (1, 1), a tie: row 0 goes on by seed only.
  // Depth (1 + decisive wins): [2, 2, 1, 1]; decisive means [2, 2, 0, 0]; rows 0, 1 tied → one
  // class. Ranks [.5, .5, 2.5, 2.5] → r = 1 − rank/3 = [5/6, 5/6, 1/6, 1/6], mean .5, deviations
  // ±1/3, unbiased std √(4/27) = .384900 → ±.866025 (−ε); population std 1/3 → ±1 (−ε).
  std::vector<int64_t> rows{0, 1, 2, 3};
  const auto t = arena_single_elimination(rows, 0, arena_reward_order_judge(vec({1, 1, 0, 0})));
  EXPECT_EQ(t.seed, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(t.round_out, (std::vector<int64_t>{3, 2, 1, 1}));
  EXPECT_EQ(t.depth, (std::vector<int64_t>{2, 2, 1, 1}));
  EXPECT_EQ(t.avg_score, (std::vector<double>{2, 2, 0, 0}));
  EXPECT_EQ(t.rank, (std::vector<double>{0.5, 0.5, 2.5, 2.5}));
  EXPECT_TRUE(close(reward_order_advantages({1, 1, 0, 0}), Vec{0.866023, 0.866023, -0.866023, -0.866023}, 1e-6));
  EXPECT_TRUE(close(reward_order_advantages({1, 1, 0, 0}, "population"), Vec{0.999997, 0.999997, -0.999997, -0.999997}, 1e-6));
  // Same multiset, other row order: row 0 (anchor, R = 0) ties row 2 in seeding, rows 1 and 3
  // tie in the final → the two 1s and the two 0s still pair up.
  EXPECT_TRUE(close(reward_order_advantages({0, 1, 0, 1}), Vec{-0.866023, 0.866023, -0.866023, 0.866023}, 1e-6));
  // One 1 as the anchor: the 0s of seeds 2, 3 tie in round 1 (no depth for seed 2), seed 4 loses
  // to the anchor: all three 0s have depth 1 and decisive mean 0 → ranks [0, 2, 2, 2] →
  // r = [1, 1/3, 1/3, 1/3], mean .5, unbiased std 1/3 → [1.5, −.5, −.5, −.5] (−ε).
  EXPECT_TRUE(close(reward_order_advantages({1, 0, 0, 0}), Vec{1.499996, -0.499999, -0.499999, -0.499999}, 1e-6));
}

TEST(ArenaRank, RewardOrderTwoLevelsAnyRowOrderAnyAnchor) {
  // Every 0/1 reward vector of 4 and 8 rows (2^k rows, no byes) with every anchor: equal rewards
  // get equal ranks, and a 1 never ranks below a 0.
  for (int64_t n : {4, 8}) {
    std::vector<int64_t> rows(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
    for (int64_t bits = 0; bits < (int64_t{1} << n); ++bits) {
      Vec r;
      for (int64_t i = 0; i < n; ++i) r.push_back(static_cast<double>((bits >> i) & 1));
      const PairJudge judge = arena_reward_order_judge(vec(r));
      for (size_t anchor = 0; anchor < rows.size(); ++anchor) {
        const auto t = arena_single_elimination(rows, anchor, judge);
        for (size_t i = 0; i < rows.size(); ++i)
          for (size_t j = 0; j < rows.size(); ++j) {
            if (r[i] == r[j]) ASSERT_EQ(t.rank[i], t.rank[j]) << "bits " << bits << " anchor " << anchor;
            if (r[i] > r[j]) ASSERT_LE(t.rank[i], t.rank[j]) << "bits " << bits << " anchor " << anchor;
          }
      }
    }
  }
}

TEST(ArenaRank, RowsTheResultsDoNotSeparateShareARank) {
  // R = [2, 1, 1, 0], anchor row 0: every other row loses to the anchor in seeding (0, 2) →
  // seeds [1, 2, 3, 4]; round 1: row 0 beats row 3, rows 1 and 2 tie; the final row 0 beats
  // row 1. Rows 1, 2, 3 lost every decisive match they played, all to row 0: depth 1, decisive
  // mean 0 each → ranks [0, 2, 2, 2] → a = [1.5, −.5, −.5, −.5] (−ε). The 1s are not ranked above
  // the 0 because no match separated them (a tournament is not a sort).
  const auto t = arena_single_elimination({0, 1, 2, 3}, 0, arena_reward_order_judge(vec({2, 1, 1, 0})));
  EXPECT_EQ(t.rank, (std::vector<double>{0, 2, 2, 2}));
  EXPECT_TRUE(close(reward_order_advantages({2, 1, 1, 0}), Vec{1.499996, -0.499999, -0.499999, -0.499999}, 1e-6));
}

TEST(ArenaRank, TiesNeverUndoADecisiveResult) {
  // A judge that is not transitive. Rows a = 0 (anchor), b = 1, c = 2, d = 3. Seeding: b ties a
  // (5 : 5), c ties a (5 : 5), d loses (1 : 9) → scores [19/3, 5, 5, 1], seeds [1, 2, 3, 4].
  // Round 1: a beats d 8 : 2, b beats c 7 : 3; final a beats b 6 : 4. The seeding ties would link
  // b and c to a, but a beat b (and b beat c): both links are refused, so the ranks follow the
  // depths [3, 2, 1, 1] and decisive means [23/3, 5.5, 3, 1.5] → [0, 1, 2, 3].
  ScriptedJudge j;
  j.add(1, 0, 5, 5);
  j.add(2, 0, 5, 5);
  j.add(3, 0, 1, 9);
  j.add(0, 3, 8, 2);
  j.add(1, 2, 7, 3);
  j.add(0, 1, 6, 4);
  const auto t = arena_single_elimination({0, 1, 2, 3}, 0, j.fn());
  EXPECT_EQ(t.depth, (std::vector<int64_t>{3, 2, 1, 1}));
  EXPECT_DOUBLE_EQ(t.avg_score[0], 23.0 / 3);
  EXPECT_EQ(t.rank, (std::vector<double>{0, 1, 2, 3}));
}

TEST(ArenaRank, JudgeIsAModelUnlessRewardOrderIsNamed) {
  // judge none (default) needs pair_judge; reward_order builds its own from R and ignores one
  // that is supplied (here a judge that prefers the lower reward).
  const Mat m(2, Vec{1});
  auto in = inputs(outcome_at_last({1, 0}, m), m, {0, 0});
  EXPECT_THROW(advantage_arena_rank(in, AdvantageOptions{}), c10::Error);
  AdvantageOptions o;
  o.arena.judge = "reward_order";
  EXPECT_TRUE(close(advantage_arena_rank(in, o).advantages.select(1, 0), Vec{0.707106, -0.707106}));
  in.pair_judge = [](int64_t a, int64_t b) { return std::make_pair(a > b ? 2.0 : 0.0, a > b ? 0.0 : 2.0); };
  EXPECT_TRUE(close(advantage_arena_rank(in, o).advantages.select(1, 0), Vec{0.707106, -0.707106}));
  EXPECT_TRUE(close(advantage_arena_rank(in, AdvantageOptions{}).advantages.select(1, 0), Vec{-0.707106, 0.707106}));
  o.arena.judge = "reward";
  EXPECT_THROW(advantage_arena_rank(in, o), c10::Error);
}

TEST(ArenaRank, NeedsJudgeAndTwoTrajectories) {
  const Mat m(2, Vec{1});
  EXPECT_THROW(advantage_arena_rank(inputs(m, m, {0, 0}), AdvantageOptions{}), c10::Error);
  auto in = inputs(m, m, {0, 1});
  in.pair_judge = [](int64_t, int64_t) { return std::make_pair(0.0, 0.0); };
  EXPECT_THROW(advantage_arena_rank(in, AdvantageOptions{}), c10::Error);
}

}  // namespace
}  // namespace keel::credit
