// Tests of gated reward channels: G-RA (spec rewards.md B1) and the HRM chain (B2), both [interp].
#include "rewards/schemes/gated.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(Gated, GraWorkedExample) {
  // Steps [0.1, 0.1, −0.05] (Σ = 0.15): pass 1 + 0.15 = 1.15; fail 0 + 0.15 = 0.15 (δ = 0 reached);
  // empty patch −0.5 (gated off); no submit −1.
  GraOptions o;
  auto high = dt({gra_outcome_value("pass", o), gra_outcome_value("fail", o), gra_outcome_value("empty_patch", o),
                  gra_outcome_value("no_submit", o)});
  auto low = dt({0.1, 0.1, -0.05}).repeat({4, 1});
  auto r = gra_reward(high, low, {}, o);
  EXPECT_TRUE(torch::allclose(r, dt({1.15, 0.15, -0.5, -1.0}), 1e-12, 1e-12));
  // D-RA (ungated) adds the steps everywhere.
  o.gated = false;
  EXPECT_TRUE(torch::allclose(gra_reward(high, low, {}, o), dt({1.15, 0.15, -0.35, -0.85}), 1e-12, 1e-12));
  EXPECT_THROW(gra_outcome_value("crash", o), Error);
}

TEST(Gated, GraTurnPlacementSumsToEpisodeReward) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    GraOptions o;
    const int64_t n = 1 + seed % 5, t = 1 + seed % 6;
    auto high = torch::randn({n}, torch::kFloat64);
    auto low = torch::randn({n, t}, torch::kFloat64) * 0.1;
    auto mask = torch::rand({n, t}) > 0.3;
    auto turns = gra_turn_rewards(high, low, mask, o);
    // Loop reference.
    for (int64_t i = 0; i < n; ++i) {
      const bool open = high[i].item<double>() >= o.threshold;
      int64_t last = -1;
      for (int64_t j = 0; j < t; ++j)
        if (mask[i][j].item<bool>()) last = j;
      for (int64_t j = 0; j < t; ++j) {
        double e = (mask[i][j].item<bool>() && open) ? low[i][j].item<double>() : 0.0;
        if (j == last) e += high[i].item<double>();
        EXPECT_NEAR(turns[i][j].item<double>(), e, 1e-12);
      }
      if (last >= 0) {
        EXPECT_NEAR(turns[i].sum().item<double>(), gra_reward(high, low, mask, o)[i].item<double>(), 1e-12);
      }
    }
  }
}

TEST(Gated, HierarchicalWorkedExample) {
  // Columns (format, correct, quality, process).
  // Well-formed, correct 1.0, quality 0.8, process 0.5 -> 0.5 + 0.24 + 0.1 = 0.84.
  // Correct 0.5 < τ_c -> 0.25 + 0 + 0.1 = 0.35.  Malformed -> 0.1.
  auto v = dt({1, 1.0, 0.8, 0.5, 1, 0.5, 0.8, 0.5, 0, 1.0, 0.8, 0.5}).view({3, 4});
  auto r = gated_reward(v, hierarchical_default_options());
  EXPECT_TRUE(torch::allclose(r, dt({0.84, 0.35, 0.1}), 1e-12, 1e-12));
}

TEST(Gated, GraAsChannelsAndPriorityEqualDependsOn) {
  // G-RA as two channels {outcome; steps after outcome} equals gra_reward.
  GatedOptions by_name;
  by_name.channels = {{"outcome", 1, 0, -1, {}}, {"steps", 1, 0, -1, {"outcome"}}};
  GatedOptions by_priority;
  by_priority.channels = {{"outcome", 1, 0, 0, {}}, {"steps", 1, 0, 1, {}}};
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    auto high = torch::randn({6}, torch::kFloat64);
    auto low = torch::randn({6, 3}, torch::kFloat64);
    auto vals = torch::stack({high, low.sum(1)}, 1);
    auto expect = gra_reward(high, low, {}, {});
    EXPECT_TRUE(torch::allclose(gated_reward(vals, by_name), expect, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(gated_reward(vals, by_priority), expect, 1e-12, 1e-12));
  }
}

TEST(Gated, RandomDagMatchesRecursiveReference) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int c = 2 + seed % 4;
    GatedOptions o;
    for (int i = 0; i < c; ++i) {
      GatedChannel ch{"c" + std::to_string(i), 0.5 + i, 0.0, -1, {}};
      for (int j = 0; j < i; ++j)
        if ((seed + i * 3 + j) % 3 == 0) ch.depends_on.push_back("c" + std::to_string(j));
      o.channels.push_back(ch);
    }
    auto vals = torch::randn({7, c}, torch::kFloat64);
    auto fast = gated_reward(vals, o);
    for (int64_t n = 0; n < 7; ++n) {
      std::function<bool(int)> counted = [&](int i) {
        for (const auto& d : o.channels[i].depends_on) {
          const int j = std::stoi(d.substr(1));
          if (!counted(j) || vals[n][j].item<double>() < o.channels[j].threshold) return false;
        }
        return true;
      };
      double e = 0;
      for (int i = 0; i < c; ++i)
        if (counted(i)) e += o.channels[i].weight * vals[n][i].item<double>();
      EXPECT_NEAR(fast[n].item<double>(), e, 1e-12);
    }
  }
}

TEST(Gated, ReaderChecksTheDag) {
  GatedOptions o;
  EXPECT_TRUE(testing::read_yaml("  channels:\n    - {name: outcome, threshold: 0}\n    - {name: steps, depends_on: [outcome]}\n",
                                 o, read_gated_options).empty());
  ASSERT_EQ(o.channels.size(), 2u);
  EXPECT_EQ(o.channels[1].depends_on, std::vector<std::string>{"outcome"});
  auto e = testing::read_yaml("  channels:\n    - {name: a, depends_on: [b]}\n    - {name: b, depends_on: [a]}\n", o,
                              read_gated_options);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("cycle"), std::string::npos);
  e = testing::read_yaml("  channels:\n    - {name: a, depends_on: [zz]}\n", o, read_gated_options);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("unknown channel 'zz'"), std::string::npos);
  GraOptions g;
  EXPECT_TRUE(testing::read_yaml("  threshold: 0.5\n  outcome_levels: {pass: 2}\n", g, read_gra_options).empty());
  EXPECT_EQ(g.pass, 2.0);
  EXPECT_EQ(testing::read_yaml("  outcome_levels: {pass: -2}\n", g, read_gra_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
