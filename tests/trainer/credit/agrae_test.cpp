// Tests of A-GRAE (spec §4): paper and released-code forms, attenuation, curriculum state, loop reference.
#include "trainer/credit/agrae.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

AdvantageInputs two_groups() {
  // Group 1 [1,0,0,0] (p = .25), group 2 [1,1,1,0] (p = .75), interleaved rows.
  const Mat m(8, Vec{1});
  return inputs(outcome_at_last({1, 1, 0, 1, 0, 1, 0, 0}, m), m, {1, 2, 1, 2, 1, 2, 1, 2});
}

TEST(Agrae, SpecWorkedExamplePaperForm) {
  // ω = 4/8 = .5. Group 1: GRPO A = [1.5, −.5, −.5, −.5];
  //   factor = (.5/2)/√.25 + (.5/2)/√.75 = .5 + .288675 = .788675 → 1.183013·min(1, .5/1) = .591506; −.394338.
  // Group 2: GRPO A = [.5, .5, .5, −1.5]; factor = .25/√.75 + .25/√.25 = .788675 → .394338·.5 = .197169; −1.183013.
  const auto out = advantage_agrae(two_groups(), AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{0.591505}, {0.197168}, {-0.394337}, {0.197168},
                                        {-0.394337}, {0.197168}, {-0.394337}, {-1.183010}}));
  EXPECT_NEAR(out.metrics.at("agrae/omega"), 0.5, 1e-12);
  EXPECT_NEAR(out.state.at(kAgraeOmegaKey), 0.5, 1e-12);
}

TEST(Agrae, SpecWorkedExampleReleasedCodeForm) {
  // factor = (ω/2)/(√p+ε) + ((1−ω)/2)/(1−√p+ε): p=.25 → .25/.5 + .25/.5 = 1 → [.75 (after ×.5), −.5];
  // p=.75 → .25/.866025 + .25/.133975 = 2.154701 → [.538675, −3.232051] (ε shifts the 6th digit).
  AdvantageOptions o;
  o.agrae.easy_term = "one_minus_sqrt_p";
  const auto out = advantage_agrae(two_groups(), o);
  EXPECT_TRUE(close(out.advantages, Mat{{0.749997}, {0.538670}, {-0.499998}, {0.538670},
                                        {-0.499998}, {0.538670}, {-0.499998}, {-3.232023}}));
}

TEST(Agrae, AlphaAndCurriculumMomentum) {
  // α = .5 with ω = .5: min(1, ω/α) = 1 → positives not attenuated (paper group-1 value 1.183013).
  AdvantageOptions o;
  o.agrae.alpha = 0.5;
  EXPECT_NEAR(advantage_agrae(two_groups(), o).advantages[0][0].item<double>(), 1.183013, 1e-4);
  // momentum .5 with ω_prev = .9: ω = .5·.9 + .5·.5 = .7 → stored for the next step.
  AdvantageOptions mo;
  mo.agrae.omega_momentum = 0.5;
  auto in = two_groups();
  in.state[kAgraeOmegaKey] = 0.9;
  const auto out = advantage_agrae(in, mo);
  EXPECT_NEAR(out.state.at(kAgraeOmegaKey), 0.7, 1e-12);
  // group 1 row 0: 1.5·((.7/2)/.5 + (.3/2)/√.75)·min(1,.7) = 1.5·(.7 + .173205)·.7 = .916865
  EXPECT_NEAR(out.advantages[0][0].item<double>(), 0.916865, 1e-4);
}

TEST(Agrae, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 600; seed < 660; ++seed) {
    const auto b = random_batch(seed, true, /*binary=*/seed % 2 == 0, false);
    AdvantageOptions o;
    o.singleton = "zero";
    o.agrae.alpha = seed % 3 ? 1.0 : 0.5;
    o.agrae.r_max = seed % 2 ? 2.0 : 1.0;
    o.agrae.easy_term = seed % 4 < 2 ? "sqrt_one_minus_p" : "one_minus_sqrt_p";
    const Vec r = ref::row_sums(b.r_tok);
    double omega = ref::mean_of(r) / o.agrae.r_max;
    omega = std::min(1.0, std::max(0.0, omega));
    Vec a = ref::grpo(r, b.gid, o.eps, true, "zero");
    for (const auto& [g, rows] : ref::groups_of(b.gid)) {
      Vec x;
      for (size_t i : rows) x.push_back(r[i]);
      const double p = std::min(1.0, std::max(0.0, ref::mean_of(x) / o.agrae.r_max));
      for (size_t i : rows) {
        if (p > 0 && p < 1) {
          const double f = o.agrae.easy_term == "sqrt_one_minus_p"
                               ? omega / 2 / std::sqrt(p) + (1 - omega) / 2 / std::sqrt(1 - p)
                               : omega / 2 / (std::sqrt(p) + o.eps) + (1 - omega) / 2 / (1 - std::sqrt(p) + o.eps);
          a[i] *= f;
        }
        if (a[i] > 0) a[i] *= std::min(1.0, omega / o.agrae.alpha);
      }
    }
    ASSERT_TRUE(close(advantage_agrae(b.in(), o).advantages, ref::broadcast(a, b.mask), 1e-9)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace keel::credit
