// Tests of SS-GRPO stage weighting (spec §10.1).
#include "trainer/credit/ss_grpo.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

TEST(SsGrpo, SpecWorkedExample) {
  // Paper Λ; R row 0 = [.8,.5,.6,.9] → G_0 = .8 + .4·.5 + .6·.6 + .8·.9 = 2.08, G_1 = .5 + .4·.6 + .8·.9 = 1.46,
  // G_2 = .6 + .8·.9 = 1.32, G_3 = .9. Each row's tokens: one per stage, stage ids 0..3.
  const Mat rs{{0.8, 0.5, 0.6, 0.9}, {0.4, 0.7, 0.5, 0.3}, {0.6, 0.6, 0.7, 0.6}};
  const Mat m(3, Vec{1, 1, 1, 1, 0});
  auto in = inputs(Mat(3, Vec(5, 0.0)), m, {0, 0, 0});
  in.stage_rewards = mat(rs);
  in.stage_ids = torch::tensor({0, 1, 2, 3, -1}, torch::kLong).repeat({3, 1});
  const auto g = ss_stage_returns(in.stage_rewards, torch::ones({3, 4}, torch::kBool), SsGrpoOptions{}.lambda);
  EXPECT_TRUE(close(g, Mat{{2.08, 1.46, 1.32, 0.90}, {1.22, 1.14, 0.74, 0.30}, {1.74, 1.36, 1.18, 0.60}}));
  const auto out = advantage_ss_grpo(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{0.923512, 0.855181, 0.792980, 0.999997, 0},
                                        {-1.062039, -1.099518, -1.123388, -0.999997, 0},
                                        {0.138527, 0.244337, 0.330408, 0.0, 0}}));
}

TEST(SsGrpo, MissingStageLeftOutOfItsStatistics) {
  // K = 2, Λ = [[1, .5], [0, 1]]. Row 2 lacks stage 1 (R counted as 0, excluded from stage 1 stats).
  // G = [[1+.5·1, 1], [0+.5·0, 0], [1 + 0, 0]] → stage 0: [1.5, 0, 1] mean 5/6, std .763763;
  // stage 1 over rows 0, 1: [1, 0] → ±.707106; row 2 → 0.
  const Mat m(3, Vec{1, 1});
  auto in = inputs(Mat(3, Vec(2, 0.0)), m, {4, 4, 4});
  in.stage_rewards = mat({{1, 1}, {0, 0}, {1, 7}});
  in.stage_present = torch::tensor({true, true, true, true, true, false}).view({3, 2});
  in.stage_ids = torch::tensor({0, 1}, torch::kLong).repeat({3, 1});
  AdvantageOptions o;
  o.ss.lambda = {1, 0.5, 0, 1};
  const double s = 0.763763;
  EXPECT_TRUE(close(advantage_ss_grpo(in, o).advantages,
                    Mat{{(1.5 - 5.0 / 6) / s, 0.707106}, {(0 - 5.0 / 6) / s, -0.707106}, {(1 - 5.0 / 6) / s, 0}}));
  o.ss.lambda = {1, 0.5, 0, 1, 0, 0, 0, 0, 1};
  EXPECT_THROW(advantage_ss_grpo(in, o), c10::Error);  // K mismatch
}

TEST(SsGrpo, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 1000; seed < 1060; ++seed) {
    const auto b = random_batch(seed, false);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    const int64_t k = 1 + seed % 4;
    std::vector<double> lam(static_cast<size_t>(k * k), 0.0);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i; j < k; ++j) lam[static_cast<size_t>(i * k + j)] = i == j ? 1.0 : u(rng);
    const size_t n = b.gid.size();
    Mat rs(n, Vec(static_cast<size_t>(k))), pres(n, Vec(static_cast<size_t>(k), 1.0));
    for (size_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) {
        rs[i][static_cast<size_t>(j)] = u(rng);
        if (u(rng) < 0.15) pres[i][static_cast<size_t>(j)] = 0.0;
      }
    Mat sid(n, Vec(b.mask[0].size()));
    for (auto& row : sid)
      for (double& v : row) v = std::uniform_int_distribution<int>(-1, static_cast<int>(k) - 1)(rng);
    // loop reference
    Mat g(n, Vec(static_cast<size_t>(k), 0.0));
    for (size_t i = 0; i < n; ++i)
      for (int64_t s = 0; s < k; ++s)
        for (int64_t j = s; j < k; ++j)
          g[i][static_cast<size_t>(s)] += lam[static_cast<size_t>(s * k + j)] * rs[i][static_cast<size_t>(j)] * pres[i][static_cast<size_t>(j)];
    Mat a(n, Vec(static_cast<size_t>(k), 0.0));
    for (const auto& [grp, rows] : ref::groups_of(b.gid))
      for (int64_t s = 0; s < k; ++s) {
        Vec x;
        for (size_t i : rows)
          if (pres[i][static_cast<size_t>(s)] != 0) x.push_back(g[i][static_cast<size_t>(s)]);
        for (size_t i : rows)
          if (pres[i][static_cast<size_t>(s)] != 0)
            a[i][static_cast<size_t>(s)] = (g[i][static_cast<size_t>(s)] - ref::mean_of(x)) / (ref::std_of(x) + 1e-6);
      }
    Mat want = b.mask;
    for (size_t i = 0; i < n; ++i)
      for (size_t t = 0; t < want[i].size(); ++t)
        want[i][t] = b.mask[i][t] != 0 && sid[i][t] >= 0 ? a[i][static_cast<size_t>(sid[i][t])] : 0.0;
    auto in = b.in();
    in.stage_rewards = mat(rs);
    in.stage_present = mat(pres).to(torch::kBool);
    in.stage_ids = mat(sid).to(torch::kLong);
    AdvantageOptions o;
    o.ss.lambda = lam;
    ASSERT_TRUE(close(advantage_ss_grpo(in, o).advantages, want, 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
