// Tests of R³L positive amplification and pivotal credit (spec §5.2–5.3).
#include "trainer/credit/r3l_opmd.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(R3lOpmd, SpecWorkedExampleScores) {
  // b = (1 + 0 + .5 + 0)/4 = .375: R=1 → success → 1; 0 → −.375 (negative, unchanged);
  // .5 → .125 ≥ 0 → ×3 = .375. Singleton retry sample with R = 1 → b = 0 → success → 1: R³L puts
  // reflection / retry samples in groups of one by design, which is advantage.singleton raw.
  const Mat m(5, Vec{1, 1});
  const auto in = inputs(outcome_at_last({1.0, 0.0, 0.5, 0.0, 1.0}, m), m, {0, 0, 0, 0, 7});
  AdvantageOptions raw;
  raw.singleton = "raw";
  const auto out = advantage_r3l_opmd(in, raw);
  EXPECT_TRUE(close(out.advantages.select(1, 0), Vec{1.0, -0.375, 0.375, -0.375, 1.0}));
  EXPECT_FALSE(out.loss_mask.defined());  // no pivot_steps → no mask override
  EXPECT_THROW(advantage_r3l_opmd(in, AdvantageOptions{}), c10::Error);  // default: error
}

TEST(R3lOpmd, SegmentIdsFromMaskRuns) {
  EXPECT_TRUE(close(segment_ids_from_mask(mat({{1, 1, 0, 1, 0, 0, 1}, {0, 0, 0, 0, 0, 0, 0}})).to(torch::kDouble),
                    Mat{{0, 0, -1, 1, -1, -1, 2}, {-1, -1, -1, -1, -1, -1, -1}}));
}

TEST(R3lOpmd, SpecPivotExample) {
  // τ1 has assistant segments s0 s1 s2 (separated by observation tokens), retry_from_step = 2 →
  // s0 and s1 are masked in τ1 and in τ2; only s2 of τ1 and the new suffix (segment 2) of τ2 train.
  // τ1: R = 0, τ2: R = 1 → b = .5, scores τ1: −.5, τ2: 1.
  const Mat m{{1, 1, 0, 1, 0, 1, 1}, {1, 1, 0, 1, 0, 1, 1}};
  auto in = inputs(outcome_at_last({0, 1}, m), m, {3, 3});
  in.pivot_steps = ids({2, 2});
  const auto out = advantage_r3l_opmd(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.loss_mask, Mat{{0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 1, 1}}));
  EXPECT_TRUE(close(out.advantages, Mat{{0, 0, 0, 0, 0, -0.5, -0.5}, {0, 0, 0, 0, 0, 1, 1}}));
  // k ≤ 0: nothing masked
  in.pivot_steps = ids({0, -1});
  EXPECT_TRUE(close(advantage_r3l_opmd(in, AdvantageOptions{}).loss_mask, m));
}

TEST(R3lOpmd, LogAvgExpBaseline) {
  // Group [1, 0], τ = 1: b = log((e + 1)/2) = .620115 → scores [1 (success), −.620115].
  const Mat m(2, Vec{1});
  AdvantageOptions o;
  o.r3l.baseline = "logavgexp";
  EXPECT_TRUE(close(advantage_r3l_opmd(inputs({{1}, {0}}, m, {0, 0}), o).advantages, Mat{{1}, {-0.620115}}));
}

TEST(R3lOpmd, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 700; seed < 760; ++seed) {
    const auto b = random_batch(seed, true, false, seed % 2 == 0);
    AdvantageOptions o;
    o.singleton = "raw";  // the authors' b = 0 for groups of one (spec §5.3)
    o.r3l.baseline = seed % 3 == 0 ? "logavgexp" : "mean";
    o.r3l.tau = seed % 2 ? 0.5 : 1.0;
    const Vec r = ref::row_sums(b.r_tok);
    Vec score(r.size());
    for (const auto& [g, rows] : ref::groups_of(b.gid)) {
      double base = 0;
      if (rows.size() > 1) {
        if (o.r3l.baseline == "mean") {
          for (size_t i : rows) base += r[i] / static_cast<double>(rows.size());
        } else {
          double s = 0;
          for (size_t i : rows) s += std::exp(r[i] / o.r3l.tau);
          base = o.r3l.tau * std::log(s / static_cast<double>(rows.size()));
        }
      }
      for (size_t i : rows) {
        const double sc = r[i] - base;
        score[i] = r[i] >= 1.0 ? 1.0 : sc >= 0 ? 3.0 * sc : sc;
      }
    }
    // pivots: random k per row, segments = runs of the mask
    std::vector<int64_t> k;
    Mat keep = b.mask;
    for (size_t i = 0; i < b.mask.size(); ++i) {
      k.push_back(static_cast<int64_t>((seed + i) % 4) - 1);
      int64_t seg = -1;
      for (size_t t = 0; t < b.mask[i].size(); ++t) {
        if (b.mask[i][t] != 0 && (t == 0 || b.mask[i][t - 1] == 0)) ++seg;
        if (b.mask[i][t] != 0 && k.back() > 0 && seg < k.back()) keep[i][t] = 0;
      }
    }
    auto in = b.in();
    in.pivot_steps = ids(k);
    const auto out = advantage_r3l_opmd(in, o);
    ASSERT_TRUE(close(out.loss_mask, keep, 1e-12)) << "seed " << seed;
    ASSERT_TRUE(close(out.advantages, ref::broadcast(score, keep), 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
