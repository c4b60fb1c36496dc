// Tests of the CaRR rubric score and the C-GRPO combination (spec rewards.md B3d).
#include "rewards/schemes/carr.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;
using testing::lt;

TEST(Carr, RubricWorkedExample) {
  // R0 {E0,E1} supported, R1 {E1,E2} supported, R2 {E3} supported but unlinked -> {R0, R1} -> 2/3.
  std::vector<CarrRubric> r{{{0, 1}, true, true}, {{1, 2}, true, true}, {{3}, true, true}};
  EXPECT_NEAR(carr_rubric_score(r, true, true, {}), 2.0 / 3.0, 1e-12);
  // R1 unsupported -> only R0 -> 1/3.
  r[1].supported = false;
  EXPECT_NEAR(carr_rubric_score(r, true, true, {}), 1.0 / 3.0, 1e-12);
  // No-BFS ablation: fraction supported = 2/3.
  EXPECT_NEAR(carr_rubric_score(r, true, true, {false}), 2.0 / 3.0, 1e-12);
}

TEST(Carr, RubricEdgeCases) {
  std::vector<CarrRubric> r{{{0, 1}, true, true}, {{1}, false, true}};
  EXPECT_NEAR(carr_rubric_score(r, true, true, {}), 0.5, 1e-12);  // unidentified scores 0, still counted
  EXPECT_EQ(carr_rubric_score(r, false, true, {}), 0.0);         // mapping failed
  EXPECT_EQ(carr_rubric_score(r, true, false, {}), 0.0);         // no citation content
  EXPECT_EQ(carr_rubric_score({}, true, true, {}), 0.0);         // no rubrics
  // A chain reached only through a later rubric: R0 {E2,E3}, R1 {E0,E2} -> both reachable.
  std::vector<CarrRubric> chain{{{2, 3}, true, true}, {{0, 2}, true, true}};
  EXPECT_EQ(carr_rubric_score(chain, true, true, {}), 1.0);
}

TEST(Carr, CgrpoWorkedExample) {
  // α = 0.3, outcomes [1,1,0,0], rubric [0.3,0.6,0.5,0.1], one group (max 0.6).
  auto o = dt({1, 1, 0, 0});
  auto rub = dt({0.3, 0.6, 0.5, 0.1});
  auto g = lt({0, 0, 0, 0});
  CgrpoOptions opt;
  opt.alpha = 0.3;
  EXPECT_TRUE(torch::allclose(cgrpo_combine(o, rub, g, opt), dt({0.79, 0.88, 0.15, 0.03}), 1e-12, 1e-12));
  opt.mode = "only_positive";  // as shipped: un-normalised rubric
  EXPECT_TRUE(torch::allclose(cgrpo_combine(o, rub, g, opt), dt({0.79, 0.88, 0, 0}), 1e-12, 1e-12));
  opt.rubric_norm = "group_max";
  EXPECT_TRUE(torch::allclose(cgrpo_combine(o, rub, g, opt), dt({0.85, 1.0, 0, 0}), 1e-12, 1e-12));
  opt.mode = "linear";
  EXPECT_TRUE(torch::allclose(cgrpo_combine(o, rub, g, opt), dt({0.85, 1.0, 0.25, 0.05}), 1e-12, 1e-12));
  opt.mode = "only_negative";  // o > 0 -> o, else α·rubric_norm
  EXPECT_TRUE(torch::allclose(cgrpo_combine(o, rub, g, opt), dt({1, 1, 0.25, 0.05}), 1e-12, 1e-12));
}

TEST(Carr, CgrpoMatchesLoopReference) {
  for (int seed = 0; seed < 60; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 11;
    auto o = (torch::rand({n}) > 0.5).to(torch::kFloat64);
    auto rub = torch::rand({n}, torch::kFloat64) * (seed % 4 == 0 ? 0.0 : 1.0);  // some all-zero groups
    auto g = torch::randint(0, 1 + seed % 3, {n}, torch::kLong);
    CgrpoOptions opt;
    opt.alpha = 0.1 * (seed % 10);
    opt.mode = seed % 3 == 0 ? "linear" : (seed % 3 == 1 ? "only_positive" : "only_negative");
    opt.rubric_norm = seed % 2 ? "group_max" : "none";
    auto fast = cgrpo_combine(o, rub, g, opt);
    for (int64_t i = 0; i < n; ++i) {
      double x = rub[i].item<double>();
      if (opt.rubric_norm == "group_max") {
        double mx = 0;
        for (int64_t j = 0; j < n; ++j)
          if (g[j].item<int64_t>() == g[i].item<int64_t>()) mx = std::max(mx, rub[j].item<double>());
        if (mx > 0) x /= mx;
      }
      const double oi = o[i].item<double>();
      double e = (1 - opt.alpha) * oi + opt.alpha * x;
      if (opt.mode == "only_positive" && oi == 0) e = oi;
      if (opt.mode == "only_negative") e = oi > 0 ? oi : opt.alpha * x;
      EXPECT_NEAR(fast[i].item<double>(), e, 1e-12);
    }
  }
  CgrpoOptions opt;
  EXPECT_EQ(testing::read_yaml("  rubric_norm: mean\n", opt, read_cgrpo_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
