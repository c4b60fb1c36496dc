// Tests of DCPO contrastive selection (spec §11, INTERPRETATION).
#include "trainer/credit/dcpo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(Dcpo, SpecWorkedExample) {
  // K = 4 → keep 2: R = [1,1,0,0], ℓ = [300,120,200,500] → positive (R=1, ℓ=120) = row 1,
  // negative (R=0, ℓ=500) = row 3. GRPO over [1, 0]: mean .5, std .707107 → ±.707106.
  const Mat m(4, Vec{1, 1});
  auto in = inputs(outcome_at_last({1, 1, 0, 0}, m), m, {0, 0, 0, 0});
  in.reasoning_lengths = vec({300, 120, 200, 500});
  AdvantageOptions o;
  o.dcpo.k_keep = 2;
  const auto out = advantage_dcpo(in, o);
  EXPECT_TRUE(close(out.advantages, Mat{{0, 0}, {0.707106, 0.707106}, {0, 0}, {-0.707106, -0.707106}}));
  EXPECT_TRUE(close(out.loss_mask, Mat{{0, 0}, {1, 1}, {0, 0}, {1, 1}}));
  // The default (K/2 of K = 4) is the same selection.
  EXPECT_TRUE(close(advantage_dcpo(in, AdvantageOptions{}).advantages, out.advantages, 0.0));
}

TEST(Dcpo, DefaultKeepsHalfOfEachGroup) {
  // Default k_keep 0 = the paper's K/2 (16 → 8): max(1, ⌊K/4⌋) per side.
  EXPECT_EQ(dcpo_keep_per_side(0, 1), 0);
  EXPECT_EQ(dcpo_keep_per_side(0, 2), 1);  // a pair is all of it: as GRPO
  EXPECT_EQ(dcpo_keep_per_side(0, 3), 1);
  EXPECT_EQ(dcpo_keep_per_side(0, 4), 1);
  EXPECT_EQ(dcpo_keep_per_side(0, 7), 1);
  EXPECT_EQ(dcpo_keep_per_side(0, 8), 2);
  EXPECT_EQ(dcpo_keep_per_side(0, 16), 4);
  EXPECT_EQ(dcpo_keep_per_side(8, 4), 2);  // an explicit k_keep: ⌊min(k_keep, K)/2⌋, the old rule
  EXPECT_EQ(dcpo_keep_per_side(5, 16), 2);
  EXPECT_THROW(dcpo_keep_per_side(1, 8), c10::Error);
  EXPECT_EQ(AdvantageOptions{}.dcpo.k_keep, 0);
}

TEST(Dcpo, DefaultOptionsSelectSoDcpoIsNotGrpo) {
  // Issue: the old default k_keep 8 kept every row of a group of <= 8, so DCPO was GRPO.
  // G = 8, equal lengths, R = [.3, .8, .1, .6, .5, .2, .7, .4] → 2 per side: positives .8 (row 1),
  // .7 (row 6); negatives .1 (row 2), .2 (row 5). GRPO over [.8, .7, .1, .2]: mean .45, unbiased
  // std √(.37/3) = .351188 → ±.35/.351188 = ±.996613, ±.25/.351188 = ±.711866; rows 0, 3, 4, 7
  // leave the loss. (GRPO over all 8 would give row 1 1.428863 and row 0 −.612370.)
  const Mat m8(8, Vec{1, 1, 1});
  const Vec r8{0.3, 0.8, 0.1, 0.6, 0.5, 0.2, 0.7, 0.4};
  const auto out8 = advantage_dcpo(inputs(outcome_at_last(r8, m8), m8, std::vector<int64_t>(8, 0)), AdvantageOptions{});
  EXPECT_TRUE(close(out8.loss_mask.select(1, 0), Vec{0, 1, 1, 0, 0, 1, 1, 0}));
  EXPECT_TRUE(close(out8.advantages.select(1, 0), Vec{0, 0.996613, -0.996613, 0, 0, -0.711866, 0.711866, 0}, 1e-5));
  EXPECT_DOUBLE_EQ(out8.metrics.at("dcpo/kept_frac"), 0.5);
  // G = 4: R = [1, .25, .5, 0] → 1 per side: row 0 and row 3; GRPO over [1, 0] → ±.707106.
  const Mat m4(4, Vec{1, 1});
  const auto out4 = advantage_dcpo(inputs(outcome_at_last({1, 0.25, 0.5, 0}, m4), m4, {0, 0, 0, 0}), AdvantageOptions{});
  EXPECT_TRUE(close(out4.loss_mask.select(1, 0), Vec{1, 0, 0, 1}));
  EXPECT_TRUE(close(out4.advantages.select(1, 0), Vec{0.707106, 0, 0, -0.707106}));
  EXPECT_DOUBLE_EQ(out4.metrics.at("dcpo/kept_frac"), 0.5);
}

TEST(Dcpo, EqualRewardsSelectByLengthEqualEverythingDrops) {
  // all R equal → shortest (row 2) and longest (row 0) kept; all lengths equal too → group dropped.
  const auto keep = dcpo_select(vec({1, 1, 1, 1}), vec({9, 5, 1, 5}), ids({0, 0, 0, 0}), 2);
  EXPECT_TRUE(close(keep.to(torch::kDouble), Vec{1, 0, 1, 0}));
  EXPECT_TRUE(close(dcpo_select(vec({1, 1, 1}), vec({5, 5, 5}), ids({0, 0, 0}), 2).to(torch::kDouble), Vec{0, 0, 0}));
}

TEST(Dcpo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 1200; seed < 1260; ++seed) {
    const auto b = random_batch(seed, true, seed % 2 == 0, false);
    std::mt19937 rng(seed);
    const size_t n = b.gid.size();
    Vec len(n);
    for (double& v : len) v = std::uniform_int_distribution<int>(1, 4)(rng);
    const int64_t k_keep = seed % 3 == 0 ? 0 : 2 + static_cast<int64_t>(seed % 5);  // 0: the default, K/2
    const Vec r = ref::row_sums(b.r_tok);
    std::vector<bool> kept(n, false);
    for (const auto& [g, rows] : ref::groups_of(b.gid)) {
      const size_t h = k_keep == 0 ? (rows.size() < 2 ? 0 : std::max<size_t>(1, rows.size() / 4))
                                   : static_cast<size_t>(std::min<int64_t>(k_keep, static_cast<int64_t>(rows.size()))) / 2;
      bool flat = true;
      for (size_t i : rows) flat &= r[i] == r[rows[0]] && len[i] == len[rows[0]];
      if (h == 0 || flat) continue;
      // full ranking by (R desc, ℓ asc, row asc): the best h are positives
      std::vector<size_t> best = rows;
      std::sort(best.begin(), best.end(), [&](size_t x, size_t y) {
        return std::make_tuple(-r[x], len[x], x) < std::make_tuple(-r[y], len[y], y);
      });
      for (size_t j = 0; j < h; ++j) kept[best[j]] = true;
      std::vector<size_t> rest(best.begin() + static_cast<long>(h), best.end());
      std::sort(rest.begin(), rest.end(), [&](size_t x, size_t y) {
        return std::make_tuple(r[x], -len[x], x) < std::make_tuple(r[y], -len[y], y);
      });
      for (size_t j = 0; j < h && j < rest.size(); ++j) kept[rest[j]] = true;
    }
    Vec a(n, 0.0);
    for (const auto& [g, rows] : ref::groups_of(b.gid)) {
      Vec x;
      for (size_t i : rows)
        if (kept[i]) x.push_back(r[i]);
      for (size_t i : rows)
        if (kept[i]) a[i] = (r[i] - ref::mean_of(x)) / (ref::std_of(x) + 1e-6);
    }
    Mat mask_kept = b.mask;
    for (size_t i = 0; i < n; ++i)
      for (double& v : mask_kept[i]) v = kept[i] ? v : 0.0;
    auto in = b.in();
    in.reasoning_lengths = vec(len);
    AdvantageOptions o;
    o.singleton = "zero";  // groups of one stay unselected, as in the reference above
    o.dcpo.k_keep = k_keep;
    const auto out = advantage_dcpo(in, o);
    ASSERT_TRUE(close(out.loss_mask, mask_kept, 1e-12)) << "seed " << seed;
    ASSERT_TRUE(close(out.advantages, ref::broadcast(a, mask_kept), 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
