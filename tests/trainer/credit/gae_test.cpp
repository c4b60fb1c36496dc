// Tests of the GAE estimator (spec §1.1).
#include "trainer/credit/gae.h"

#include <gtest/gtest.h>

#include "tests/trainer/credit/reference_estimators.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

double valid_tokens(const Mat& m) {
  double n = 0;
  for (const auto& row : m)
    for (double v : row) n += v != 0;
  return n;
}

TEST(Gae, SpecWorkedExampleNoWhitening) {
  // γ=1, λ=0.95, r=[0,0,1], V=[.5,.6,.7]:
  // t=2: δ=1−.7=.3 → A=.3; t=1: δ=0+.7−.6=.1 → A=.1+.95·.3=.385; t=0: δ=.6−.5=.1 → .1+.95·.385=.46575.
  auto in = inputs({{0, 0, 1}}, {{1, 1, 1}}, {0});
  in.values = mat({{0.5, 0.6, 0.7}});
  AdvantageOptions o;
  o.whiten = false;
  const auto out = advantage_gae(in, o);
  EXPECT_TRUE(close(out.advantages, Mat{{0.46575, 0.385, 0.3}}));
  EXPECT_TRUE(close(out.returns, Mat{{0.96575, 0.985, 1.0}}));
}

TEST(Gae, SpecMaskedHoleExample) {
  // γ=λ=1, r=[0,0,0,1], V=[.2,9,9,.5], m=[1,0,0,1]: t=3 A=.5; holes carry .5 (the 9s never enter);
  // t=0: δ = 0 + .5 − .2 = .3 → A = .3 + .5 = .8. Raw A = [.8,.5,.5,.5]; returns = A + V = [1, 9.5, 9.5, 1].
  auto in = inputs({{0, 0, 0, 1}}, {{1, 0, 0, 1}}, {0});
  in.values = mat({{0.2, 9, 9, 0.5}});
  AdvantageOptions o;
  o.whiten = false;
  o.lam = 1.0;
  const auto out = advantage_gae(in, o);
  EXPECT_TRUE(close(out.advantages, Mat{{0.8, 0, 0, 0.5}}));  // masked positions zeroed
  EXPECT_TRUE(close(out.returns, Mat{{1.0, 9.5, 9.5, 1.0}}));
  const auto raw = gae_scan(in.token_rewards, in.values, in.response_mask, 1.0, 1.0);
  EXPECT_TRUE(close(raw.first, Mat{{0.8, 0.5, 0.5, 0.5}}));
}

TEST(Gae, NeedsValuesAndAddsKlRewards) {
  auto in = inputs({{0, 1}}, {{1, 1}}, {0});
  EXPECT_THROW(advantage_gae(in, AdvantageOptions{}), c10::Error);
  in.values = mat({{0, 0}});
  in.kl_rewards = mat({{-0.5, 0}});  // γ=1, λ=1: A = [−0.5+1, 1]
  AdvantageOptions o;
  o.whiten = false;
  o.lam = 1.0;
  EXPECT_TRUE(close(advantage_gae(in, o).advantages, Mat{{0.5, 1.0}}));
}

TEST(Gae, FullyMaskedBatchSkipsWhitening) {
  // Σm = 0: whitening is skipped (no NaN) and every advantage is 0.
  auto in = inputs({{0, 0}, {0, 0}}, {{0, 0}, {0, 0}}, {0, 0});
  in.values = mat({{0.5, 0.1}, {0.2, 0.3}});
  const auto out = advantage_gae(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages, Mat{{0, 0}, {0, 0}}));
}

TEST(Gae, MatchesLoopReferenceOnRandomBatches) {
  for (uint32_t seed = 300; seed < 360; ++seed) {
    const auto b = random_batch(seed, true, false, /*dense=*/true);
    for (bool whiten : {false, true}) {
      for (const std::string var : {"unbiased", "biased"}) {
        AdvantageOptions o;
        o.gamma = seed % 2 ? 1.0 : 0.9;
        o.lam = seed % 3 ? 0.95 : 1.0;
        o.whiten = whiten;
        o.gae.whiten_var = var;
        auto [a, ret] = ref::gae(b.r_tok, b.values, b.mask, o.gamma, o.lam);
        if (whiten && var == "unbiased" && valid_tokens(b.mask) < 2) {
          if (valid_tokens(b.mask) == 1) EXPECT_THROW(advantage_gae(b.in(), o), c10::Error);
          continue;
        }
        if (whiten) a = ref::whiten(a, b.mask, var == "unbiased");
        const auto out = advantage_gae(b.in(), o);
        ASSERT_TRUE(close(out.advantages, ref::masked(a, b.mask), 1e-9)) << "seed " << seed;
        ASSERT_TRUE(close(out.returns, ret, 1e-9)) << "seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace keel::credit
