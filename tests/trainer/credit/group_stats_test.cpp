// Tests of the shared group-statistics helper (spec §0.2): hand cases, exact uniform groups in
// float32 and float64, and random inputs against a slow float64 loop.
#include "trainer/credit/group_stats.h"

#include <random>

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(GroupStats, UnbiasedStdAndNonContiguousGroups) {
  // Rows of group 7 are 0, 2, 3 with x = 1, 0, 1: mean 2/3, Σ(x−m)² = 1/9+4/9+1/9 = 2/3, /(3−1) → std 0.57735.
  // Group −5 (rows 1, 4): x = 4, 2 → mean 3, std sqrt(2) = 1.41421. Group 9 (row 5): singleton → std 0.
  const auto idx = group_index(ids({7, -5, 7, 7, -5, 9}));
  EXPECT_EQ(idx.num_groups, 3);
  const auto st = group_stats(vec({1, 4, 0, 1, 2, 5}), idx);
  // dense order follows sorted ids: −5, 7, 9
  EXPECT_TRUE(close(st.count, Vec{2, 3, 1}));
  EXPECT_TRUE(close(st.mean, Vec{3.0, 2.0 / 3.0, 5.0}));
  EXPECT_TRUE(close(st.std, Vec{1.414214, 0.577350, 0.0}));
  const auto pop = group_stats(vec({1, 4, 0, 1, 2, 5}), idx, {}, /*unbiased=*/false);
  EXPECT_TRUE(close(pop.std, Vec{1.0, 0.471405, 0.0}));  // sqrt(2/2), sqrt((2/3)/3)
}

TEST(GroupStats, InvalidRowsAreExcludedEvenWhenNaN) {
  const auto idx = group_index(ids({0, 0, 0}));
  const auto st = group_stats(vec({1, NAN, 3}), idx, torch::tensor({true, false, true}));
  EXPECT_TRUE(close(st.count, Vec{2}));
  EXPECT_TRUE(close(st.mean, Vec{2}));
  EXPECT_TRUE(close(st.std, Vec{1.414214}));
}

TEST(GroupStats, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 0; seed < 60; ++seed) {
    const auto b = random_batch(seed);
    const auto idx = group_index(ids(b.gid));
    const auto st = group_stats(vec(b.reward), idx);
    const auto inv = idx.inverse;
    for (size_t i = 0; i < b.gid.size(); ++i) {
      Vec x;
      for (size_t j = 0; j < b.gid.size(); ++j)
        if (b.gid[j] == b.gid[i]) x.push_back(b.reward[j]);
      const int64_t g = inv[static_cast<int64_t>(i)].item<int64_t>();
      EXPECT_NEAR(st.mean[g].item<double>(), ref::mean_of(x), 1e-12) << "seed " << seed;
      EXPECT_NEAR(st.std[g].item<double>(), ref::std_of(x), 1e-12) << "seed " << seed;
      EXPECT_EQ(st.count[g].item<double>(), static_cast<double>(x.size()));
    }
  }
}

TEST(GroupStats, UniformGroupsAreExactInEveryDtype) {
  // Eight 0.7s in float32: a float32 sum is not 8·0.7f, so a float32 mean left std ≈ 1e-8 and GRPO
  // gave every row +0.056. 0.1 × 3 in float64: 0.1+0.1+0.1 = 0.30000000000000004, /3 ≠ 0.1.
  // A group of bit-identical values must give mean = that value and std = 0 exactly.
  for (auto dt : {torch::kFloat, torch::kDouble}) {
    const std::vector<std::pair<double, int>> groups = {{0.7, 8}, {-0.3, 8}, {0.1, 3}, {0.7, 6}};
    std::vector<double> x;
    std::vector<int64_t> gid;
    for (size_t g = 0; g < groups.size(); ++g)
      for (int k = 0; k < groups[g].second; ++k) {
        x.push_back(groups[g].first);
        gid.push_back(static_cast<int64_t>(g));
      }
    const at::Tensor xt = torch::tensor(x, torch::kDouble).to(dt);
    const auto idx = group_index(ids(gid));
    for (bool unbiased : {true, false}) {
      const auto st = group_stats(xt, idx, {}, unbiased);
      EXPECT_EQ(st.mean.scalar_type(), dt);
      EXPECT_EQ(st.std.scalar_type(), dt);
      EXPECT_TRUE(st.uniform.all().item<bool>());
      for (size_t g = 0; g < groups.size(); ++g) {
        const at::Tensor want = torch::tensor(groups[g].first, torch::kDouble).to(dt);
        EXPECT_TRUE(at::equal(st.mean[static_cast<int64_t>(g)], want)) << dt << " group " << g;
        EXPECT_EQ(st.std[static_cast<int64_t>(g)].item<double>(), 0.0) << dt << " group " << g;
      }
      // and therefore x − mean is exactly zero, in the input dtype
      EXPECT_EQ((xt - st.mean.index_select(0, idx.inverse)).abs().max().item<double>(), 0.0) << dt;
    }
  }
}

TEST(GroupStats, UniformAmongValidRowsIgnoresInvalidOnes) {
  // Group 0: valid 0.7, 0.7 (row 2 invalid, NaN) → uniform; group 1: 0.7, 0.7000001 → not uniform;
  // group 2: no valid row → not uniform, mean 0, std 0.
  const auto idx = group_index(ids({0, 0, 0, 1, 1, 2}));
  const at::Tensor x = torch::tensor({0.7f, 0.7f, NAN, 0.7f, 0.7000001f, 5.0f});
  const auto st = group_stats(x, idx, torch::tensor({true, true, false, true, true, false}));
  EXPECT_TRUE(at::equal(st.uniform, torch::tensor({true, false, false})));
  EXPECT_EQ(st.mean[0].item<float>(), 0.7f);
  EXPECT_EQ(st.std[0].item<float>(), 0.0f);
  EXPECT_GT(st.std[1].item<float>(), 0.0f);
  EXPECT_EQ(st.mean[2].item<float>(), 0.0f);
  EXPECT_EQ(st.count[2].item<float>(), 0.0f);
}

/// The slow reference: one group at a time, plain doubles, valid rows only.
struct RefStats {
  double count = 0, mean = 0, std = 0;
};
RefStats ref_stats(const std::vector<double>& x, bool unbiased) {
  RefStats s;
  s.count = static_cast<double>(x.size());
  if (x.empty()) return s;
  double sum = 0;
  for (double v : x) sum += v;
  s.mean = sum / s.count;
  bool same = true;
  for (double v : x) same &= v == x[0];
  if (same) s.mean = x[0];
  if (x.size() < 2) return s;
  double ss = 0;
  for (double v : x) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / (unbiased ? s.count - 1 : s.count));
  return s;
}

TEST(GroupStats, MatchesFloat64LoopOnRandomInputsAndDtypes) {
  // float32 and float64 inputs, random valid masks, uniform and singleton groups, unbiased and
  // population std. The reference works in float64 on the (float32-rounded) inputs; the float32
  // result is that float64 value rounded once.
  for (uint32_t seed = 0; seed < 80; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const auto dt = seed % 2 ? torch::kFloat : torch::kDouble;
    const bool unbiased = seed % 3 != 0;
    const int groups = pick(1, 5);
    std::vector<double> x;
    std::vector<int64_t> gid;
    std::vector<bool> ok;
    for (int g = 0; g < groups; ++g) {
      const int size = pick(1, 9);
      const bool same = pick(0, 2) == 0;
      const double common = std::uniform_real_distribution<double>(-3, 3)(rng);
      for (int k = 0; k < size; ++k) {
        x.push_back(same ? common : std::uniform_real_distribution<double>(-3, 3)(rng));
        gid.push_back(500 - 7 * g);
        ok.push_back(pick(0, 4) != 0);
      }
    }
    std::vector<size_t> perm(x.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<double> xs;
    std::vector<int64_t> gs;
    std::vector<uint8_t> vs;
    for (size_t i : perm) {
      xs.push_back(x[i]);
      gs.push_back(gid[i]);
      vs.push_back(ok[i]);
    }
    const at::Tensor xt = torch::tensor(xs, torch::kDouble).to(dt);
    const at::Tensor xin = xt.to(torch::kDouble);  // the values the function sees, as doubles
    const at::Tensor valid = torch::tensor(std::vector<int64_t>(vs.begin(), vs.end()), torch::kLong).to(torch::kBool);
    const auto idx = group_index(ids(gs));
    const auto st = group_stats(torch::where(valid, xt, torch::full({}, NAN, xt.options())), idx, valid, unbiased);
    for (int64_t g = 0; g < idx.num_groups; ++g) {
      std::vector<double> members;
      for (size_t i = 0; i < gs.size(); ++i)
        if (idx.inverse[static_cast<int64_t>(i)].item<int64_t>() == g && vs[i]) members.push_back(xin[static_cast<int64_t>(i)].item<double>());
      const RefStats want = ref_stats(members, unbiased);
      const double tol = dt == torch::kFloat ? 1e-6 : 1e-12;
      EXPECT_EQ(st.count[g].item<double>(), want.count) << "seed " << seed;
      EXPECT_NEAR(st.mean[g].item<double>(), want.mean, tol * (1 + std::abs(want.mean))) << "seed " << seed;
      EXPECT_NEAR(st.std[g].item<double>(), want.std, tol * (1 + want.std)) << "seed " << seed;
      bool same = !members.empty();
      for (double v : members) same &= v == members[0];
      EXPECT_EQ(st.uniform[g].item<bool>(), same) << "seed " << seed;
      if (same) {
        EXPECT_EQ(st.mean[g].item<double>(), members[0]) << "seed " << seed;  // exact
        EXPECT_EQ(st.std[g].item<double>(), 0.0) << "seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace keel::credit
