// Tests of SPO win-rate rewards (spec §8.4).
#include "trainer/credit/spo_winrate.h"

#include <gtest/gtest.h>

#include <random>

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
