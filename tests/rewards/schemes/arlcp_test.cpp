// Tests of ARLCP (spec rewards.md A5): worked examples, reflection counting, group statistics vs a
// slow per-prompt loop over random batches.
#include "rewards/schemes/arlcp.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;
using testing::sig;

TEST(Arlcp, WorkedExample) {
  // Correct responses (n_ref, L) = (20,1000), (40,2000), (30,3000): μ_ref 30, sd 10, μ_len 2000, sd 1000.
  // (30,3000): 1 − 0.05·σ(0) − 0.15·σ(1) = 1 − 0.025 − 0.1096588 = 0.8653412.
  // (20,1000): 1 − 0.05·σ(−1) − 0.15·σ(−1) = 1 − 0.2·0.2689414 = 0.9462117.
  // An incorrect response in the same group gets 0 and does not enter the statistics.
  auto r = arlcp_reward(lt({20, 40, 30, 99}), lt({1000, 2000, 3000, 500}), dt({1, 1, 1, 0}), lt({7, 7, 7, 7}), {});
  EXPECT_NEAR(r[2].item<double>(), 0.8653412, 1e-4);
  EXPECT_NEAR(r[0].item<double>(), 0.9462117, 1e-4);
  EXPECT_EQ(r[3].item<double>(), 0.0);
  // The eps 1e-6 in the denominators: exact value 1 − 0.05σ(−10/(10+1e-6)) − 0.15σ(−1000/(1000+1e-6)).
  EXPECT_NEAR(r[0].item<double>(), 1 - 0.05 * sig(-10 / (10 + 1e-6)) - 0.15 * sig(-1000 / (1000 + 1e-6)), 1e-12);
}

TEST(Arlcp, SingleCorrectResponseGivesPointNine) {
  // One correct response: std := 1, z = 0 -> both σ(0) -> 1 − 0.05·0.5 − 0.15·0.5 = 0.9.
  auto r = arlcp_reward(lt({12, 3}), lt({800, 90}), dt({1, 0}), lt({1, 1}), {});
  EXPECT_NEAR(r[0].item<double>(), 0.9, 1e-12);
  EXPECT_EQ(r[1].item<double>(), 0.0);
}

TEST(Arlcp, W1Levels) {
  // ≤ 40 -> 0.05, (40, 80] -> 0.10, > 80 -> 0.15.
  auto w = arlcp_w1(lt({0, 40, 41, 80, 81}), {});
  EXPECT_TRUE(torch::allclose(w, dt({0.05, 0.05, 0.10, 0.10, 0.15})));
}

TEST(Arlcp, ReflectionCountAndFormat) {
  // "Wait" + "but" + "check" + "double-check" (which also holds a whole-word "check") + "hmm"
  // + "hold on"; "butter", "checks" and "ohm" are not whole words.
  const std::string t = "Wait, but I should check. Double-check it. Hmm, hold on. butter checks ohm";
  EXPECT_EQ(arlcp_reflection_count(t, ArlcpOptions{}.keywords), 7);
  EXPECT_EQ(arlcp_reflection_count("WAIT wait Wait", {"wait"}), 3);
  EXPECT_TRUE(arlcp_format_ok("reasoning </think> \\boxed{1}"));
  EXPECT_FALSE(arlcp_format_ok("<think> reasoning </think> \\boxed{1}"));
  EXPECT_FALSE(arlcp_format_ok("a </think> b </think>"));
  EXPECT_FALSE(arlcp_format_ok("no tag"));
}

TEST(Arlcp, MatchesPerPromptLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 17;
    auto nref = torch::randint(0, 120, {n}, torch::kLong);
    auto len = torch::randint(10, 5000, {n}, torch::kLong);
    auto acc = (torch::rand({n}) > 0.4).to(torch::kFloat64);
    auto gid = torch::randint(0, 1 + seed % 4, {n}, torch::kLong) * 13 - 5;  // arbitrary labels
    auto fast = arlcp_reward(nref, len, acc, gid, {});
    for (int64_t i = 0; i < n; ++i) {
      if (acc[i].item<double>() < 0.5) {
        EXPECT_EQ(fast[i].item<double>(), 0.0);
        continue;
      }
      std::vector<double> xr, xl;
      for (int64_t j = 0; j < n; ++j)
        if (gid[j].item<int64_t>() == gid[i].item<int64_t>() && acc[j].item<double>() > 0.5) {
          xr.push_back(nref[j].item<int64_t>());
          xl.push_back(len[j].item<int64_t>());
        }
      auto stats = [](const std::vector<double>& v, double& mean, double& sd) {
        mean = 0;
        for (double x : v) mean += x;
        mean /= v.size();
        sd = 1.0;
        if (v.size() >= 2) {
          double ss = 0;
          for (double x : v) ss += (x - mean) * (x - mean);
          sd = std::sqrt(ss / (v.size() - 1));
        }
      };
      double mr, sr, ml, sl;
      stats(xr, mr, sr);
      stats(xl, ml, sl);
      const double k = nref[i].item<int64_t>();
      const double w1 = k <= 40 ? 0.05 : (k <= 80 ? 0.10 : 0.15);
      const double expect = 1 - w1 * sig((k - mr) / (sr + 1e-6)) -
                            (0.2 - w1) * sig((len[i].item<int64_t>() - ml) / (sl + 1e-6));
      EXPECT_NEAR(fast[i].item<double>(), expect, 1e-10) << "seed " << seed;
      EXPECT_GT(fast[i].item<double>(), 0.8);
      EXPECT_LT(fast[i].item<double>(), 1.0);
    }
  }
}

TEST(Arlcp, ReaderCrossChecks) {
  ArlcpOptions o;
  auto e = testing::read_yaml("  thresholds: [40]\n", o, read_arlcp_options);
  ASSERT_EQ(e.size(), 1u);
  // w1_levels is absent: the error points at its section's key (line 1).
  EXPECT_EQ(e[0], "t.yaml:1: p.w1_levels: expected 2 levels (thresholds + 1), got 3");
}

}  // namespace
}  // namespace keel::rewards
