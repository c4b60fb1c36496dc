// Tests of VERL effective-rank shaping (spec §12).
#include "trainer/credit/verl_rank.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(VerlRank, SpecEffectiveRank) {
  // σ = [3, 1]: p = [.75, .25] → exp(−(.75 ln .75 + .25 ln .25)) = 1.754765.
  EXPECT_NEAR(effective_rank_from_singular_values(vec({3, 1})), 1.754765, 1e-5);
  // H rows ±(3/√2, 0), ±(0, 1/√2): centred already, singular values 3 and 1.
  const double a = 3 / std::sqrt(2.0), b = 1 / std::sqrt(2.0);
  EXPECT_NEAR(effective_rank(mat({{a, 0}, {-a, 0}, {0, b}, {0, -b}})), 1.754765, 1e-5);
}

TEST(VerlRank, VelocityAndAcceleration) {
  // stride 1, L = 4 → prefixes of 1, 2, 3 rows: E = [1, 1, 1.928620] (one row: all σ = 0 → ER 1;
  // two rows: one σ → ER 1; three rows [[0,0],[1,0],[0,1]]: σ = 1, .57735 → 1.928620).
  // diff = [E1 − E0, E2 − mean(E0,E1)] = [0, .928620] → ERV .464310; diff2 = [.928620] → ERA .928620.
  const auto h = mat({{0, 0}, {1, 0}, {0, 1}, {5, 5}});
  const auto m = rank_metrics(h, 1, 512);
  EXPECT_NEAR(m[0], effective_rank(h), 1e-12);
  EXPECT_NEAR(m[1], 0.464310, 1e-4);
  EXPECT_NEAR(m[2], 0.928620, 1e-4);
  const auto short_resp = rank_metrics(h, 2, 512);  // L = 4 ≤ 2s → one prefix only → 0, 0
  EXPECT_EQ(short_resp[1], 0.0);
  EXPECT_EQ(short_resp[2], 0.0);
  // max_seq_len keeps the last rows only
  EXPECT_NEAR(rank_metrics(h, 40, 2)[0], effective_rank(h.slice(0, 2)), 1e-12);
}

TEST(VerlRank, SpecWorkedExampleAuxAndShaping) {
  // tend = σ(2·.5) = .731059; aux = tanh(.2)·.731059 + tanh(−.1)·.268941 = .117488;
  // A0 = .866025 → + min(.117488, .433013) = .983513; A0 = −.866025 → −.748537.
  const auto aux = verl_rank_aux(vec({0.2}), vec({-0.1}), vec({0.5}), 2.0, 1.0);
  EXPECT_TRUE(close(aux, Vec{0.117488}));
  EXPECT_TRUE(close(verl_rank_shape(mat({{0.866025, -0.866025}}), aux.unsqueeze(1), 2.0), Mat{{0.983513, -0.748537}}));
  EXPECT_TRUE(close(verl_rank_shape(mat({{0.0}}), vec({5.0}).unsqueeze(1), 2.0), Mat{{0.0}}));  // A0 = 0 → no bonus
}

TEST(VerlRank, EstimatorUsesStateAndUpdatesIt) {
  // Group [1,0,0,1] → GRPO ±.866025; baselines 1.0, metrics (1.2, .9, 1.5) → dev (.2, −.1, .5) → as above.
  const Mat m(4, Vec{1});
  auto in = inputs({{1}, {0}, {0}, {1}}, m, {0, 0, 0, 0});
  in.rank_metrics = torch::tensor({1.2, 0.9, 1.5}, torch::kDouble).repeat({4, 1});
  const auto first = advantage_verl_rank(in, AdvantageOptions{});  // step 1: no aux → plain GRPO
  EXPECT_TRUE(close(first.advantages, Mat{{0.866025}, {-0.866025}, {-0.866025}, {0.866025}}));
  EXPECT_NEAR(first.state.at(kVerlMidEr), 0.3 * 1.2, 1e-12);  // 0.7·0 + 0.3·1.2
  in.state = {{kVerlMidEr, 1.0}, {kVerlMidErv, 1.0}, {kVerlMidEra, 1.0}, {kVerlEmaPerf, 0.0}};
  const auto out = advantage_verl_rank(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{0.983513}, {-0.748537}, {-0.748537}, {0.983513}}));
  EXPECT_NEAR(out.state.at(kVerlMidEr), 0.7 + 0.3 * 1.2, 1e-12);
  EXPECT_NEAR(out.state.at(kVerlMidErv), 0.7 + 0.3 * 0.9, 1e-12);
  EXPECT_NEAR(out.state.at(kVerlMidEra), 0.7 + 0.3 * 1.5, 1e-12);
  EXPECT_NEAR(out.state.at(kVerlEmaPerf), 0.3 * 0.5, 1e-12);
}

TEST(VerlRank, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 1300; seed < 1360; ++seed) {
    const auto b = random_batch(seed, false, seed % 2 == 0, false);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-2, 2);
    const size_t n = b.gid.size();
    Mat met(n, Vec(3));
    for (auto& row : met)
      for (double& v : row) v = u(rng);
    const double mid[3] = {u(rng), u(rng), 0.0};  // a zero baseline saturates the deviation at ±5
    AdvantageOptions o;
    o.verl.add_reward = seed % 3 == 0;
    o.verl.add_adv = seed % 3 != 1;
    o.verl.aux_fix = seed % 2 == 0;
    o.verl.kappa = 1.5;
    const double ema_perf = 0.4;
    const double scale = o.verl.aux_fix ? 1.0 : 1.0 * (1 - (ema_perf + 1) / 2);
    Vec aux(n);
    for (size_t i = 0; i < n; ++i) {
      double dev[3];
      for (int j = 0; j < 3; ++j) dev[j] = std::clamp((met[i][static_cast<size_t>(j)] - mid[j]) / (std::abs(mid[j]) + 1e-8), -5.0, 5.0);
      const double tend = 1 / (1 + std::exp(-o.verl.gain * dev[2]));
      aux[i] = scale * (std::tanh(dev[0]) * tend + std::tanh(dev[1]) * (1 - tend));
    }
    Vec r = ref::row_sums(b.r_tok);
    if (o.verl.add_reward)
      for (size_t i = 0; i < n; ++i)
        for (double v : b.mask[i])
          if (v != 0) {
            r[i] += aux[i];  // non-empty rows get aux on their last valid token
            break;
          }
    const Vec a0 = ref::grpo(r, b.gid, o.eps, true);
    Mat want = ref::broadcast(a0, b.mask);
    if (o.verl.add_adv)
      for (size_t i = 0; i < n; ++i)
        for (size_t t = 0; t < want[i].size(); ++t)
          if (b.mask[i][t] != 0) want[i][t] += std::min(std::max(aux[i], 0.0), std::abs(a0[i]) / o.verl.kappa);
    auto in = b.in();
    in.rank_metrics = mat(met);
    in.state = {{kVerlMidEr, mid[0]}, {kVerlMidErv, mid[1]}, {kVerlMidEra, mid[2]}, {kVerlEmaPerf, ema_perf}};
    ASSERT_TRUE(close(advantage_verl_rank(in, o).advantages, want, 1e-9)) << "seed " << seed;
  }
}

TEST(VerlRank, ResponseMetricsFromHiddenStates) {
  // Row 0 uses its valid tokens only (masked hole at t = 1); row 1 is empty → zeros.
  const auto hidden = torch::tensor({0.0, 0.0, 9.0, 9.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0},
                                    torch::kDouble).view({2, 4, 2});
  const auto mask = mat({{1, 0, 1, 1}, {0, 0, 0, 0}});
  const auto got = response_rank_metrics(hidden, mask, 1, 512);
  const auto want = rank_metrics(mat({{0, 0}, {1, 0}, {0, 1}}), 1, 512);
  EXPECT_TRUE(close(got, Mat{{want[0], want[1], want[2]}, {0, 0, 0}}, 1e-12));
}

}  // namespace
}  // namespace keel::credit
