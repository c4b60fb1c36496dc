// Tests of the information-gain turn reward (spec rewards.md C3).
#include "rewards/schemes/info_gain.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

TEST(InfoGain, WorkedExample) {
  // Gold answer 2 tokens: before turn 1 (0.2, 0.4) -> P_0 = sqrt(0.08) = 0.2828427; after turn 1
  // (0.5, 0.8) -> P_1 = sqrt(0.4) = 0.6324555; r_1 = 0.3496128.
  auto lp = torch::log(dt({0.2, 0.4, 0.5, 0.8})).view({1, 2, 2});
  auto p = info_gain_probs(lp, torch::ones({1, 2}, torch::kBool));
  EXPECT_NEAR(p[0][0].item<double>(), 0.2828427, 1e-6);
  EXPECT_NEAR(p[0][1].item<double>(), 0.6324555, 1e-6);
  // Two turns: turn 1 gets the gain, turn 2 (last) the outcome 0.7.
  auto p3 = torch::cat({p, dt({0.9}).view({1, 1})}, 1);
  auto r = info_gain_turn_rewards(p3, torch::ones({1, 2}, torch::kBool), dt({0.7}));
  EXPECT_NEAR(r[0][0].item<double>(), 0.3496128, 1e-6);
  EXPECT_NEAR(r[0][1].item<double>(), 0.7, 1e-12);
}

TEST(InfoGain, MaskedGoldTokensAndRaggedTurnsMatchLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 1 + seed % 4, t = 1 + seed % 5, l = 1 + seed % 3;
    auto lp = -torch::rand({n, t + 1, l}, torch::kFloat64) * 3;
    auto gm = torch::rand({n, l}) > 0.3;
    gm.select(1, 0).fill_(true);
    auto p = info_gain_probs(lp, gm);
    auto turns = torch::randint(0, t + 1, {n}, torch::kLong);
    auto tm = torch::arange(t).unsqueeze(0) < turns.unsqueeze(1);
    auto out = torch::randn({n}, torch::kFloat64);
    auto r = info_gain_turn_rewards(p, tm, out);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> pp(t + 1);
      for (int64_t k = 0; k <= t; ++k) {
        double s = 0, c = 0;
        for (int64_t j = 0; j < l; ++j)
          if (gm[i][j].item<bool>()) {
            s += lp[i][k][j].item<double>();
            c += 1;
          }
        pp[k] = std::exp(s / c);
        EXPECT_NEAR(p[i][k].item<double>(), pp[k], 1e-12);
      }
      const int64_t nt = turns[i].item<int64_t>();
      for (int64_t k = 0; k < t; ++k) {
        double e = 0;
        if (k < nt) e = (k == nt - 1) ? out[i].item<double>() : pp[k + 1] - pp[k];
        EXPECT_NEAR(r[i][k].item<double>(), e, 1e-12);
      }
    }
  }
}

TEST(InfoGain, TokenF1) {
  EXPECT_NEAR(token_f1("The Eiffel Tower", "eiffel tower"), 1.0, 1e-12);
  EXPECT_NEAR(token_f1("eiffel tower paris", "tower"), 0.5, 1e-12);  // P 1/3, R 1 -> 0.5
  EXPECT_EQ(token_f1("lyon", "paris"), 0.0);
  InfoGainOptions o;
  EXPECT_EQ(testing::read_yaml("  final_score: bleu\n", o, read_info_gain_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
