// Tests of the ArenaRL tournament (spec §9).
#include "trainer/credit/arena_rank.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(t.rank, (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(t.round_out, (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(calls, 4);
}

TEST(ArenaRank, TiesGoToTheBetterSeed) {
  PairJudge judge = [](int64_t, int64_t) { return std::make_pair(1.0, 1.0); };
  const auto t = arena_single_elimination({10, 11}, 0, judge);
  EXPECT_EQ(t.seed, (std::vector<int64_t>{1, 2}));  // equal seeding scores: earlier position first
  EXPECT_EQ(t.rank, (std::vector<int64_t>{0, 1}));
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
      EXPECT_EQ(t.rank[static_cast<size_t>(i)], better) << "seed " << seed << " row " << i;
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
      std::vector<int64_t> sorted = t.rank;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], static_cast<int64_t>(i));  // a permutation
      const double k = static_cast<double>(rows.size());
      Vec r;
      for (int64_t rk : t.rank) r.push_back(1.0 - static_cast<double>(rk) / (k - 1));
      const double mu = ref::mean_of(r), sd = ref::std_of(r);
      for (size_t j = 0; j < rows.size(); ++j) want[static_cast<size_t>(rows[j])] = (r[j] - mu) / (sd + 1e-6);
    }
    ASSERT_TRUE(close(out.advantages, ref::broadcast(want, b.mask), 1e-9)) << "seed " << seed;
  }
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
