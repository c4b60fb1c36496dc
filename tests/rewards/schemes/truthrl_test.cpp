// Tests of the TruthRL ternary reward (spec rewards.md A4).
#include "rewards/schemes/truthrl.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

TEST(TruthRl, Normalisation) {
  EXPECT_EQ(squad_normalize("I don't know."), "i dont know");
  EXPECT_EQ(squad_normalize("  The  Eiffel, Tower! "), "eiffel tower");
  std::string b;
  EXPECT_TRUE(extract_last_boxed("x \\boxed{a} then \\boxed{\\frac{1}{2}}", b));
  EXPECT_EQ(b, "\\frac{1}{2}");
  EXPECT_FALSE(extract_last_boxed("no box \\boxed{unclosed", b));
}

TEST(TruthRl, WorkedExamples) {
  TruthRlOptions o;
  const std::vector<std::string> gold{"paris"};
  const TruthJudge none;
  // "\boxed{Paris}" vs "paris" -> +1.
  EXPECT_EQ(truthrl_classify("so \\boxed{Paris}", gold, none, o), TruthVerdict::kCorrect);
  // "\boxed{I don't know}" -> 0 ternary, +1 if OOK, −1 binary.
  const auto idk = truthrl_classify("\\boxed{I don't know}", gold, none, o);
  EXPECT_EQ(idk, TruthVerdict::kAbstain);
  EXPECT_EQ(truthrl_reward(idk, false, o), 0.0);
  TruthRlOptions ook = o;
  ook.variant = "ternary_ook";
  EXPECT_EQ(truthrl_reward(idk, true, ook), 1.0);
  EXPECT_EQ(truthrl_reward(idk, false, ook), 0.0);
  TruthRlOptions bin = o;
  bin.variant = "binary";
  EXPECT_EQ(truthrl_reward(idk, false, bin), -1.0);
  // "\boxed{Lyon}" -> −1; no box -> −1.
  EXPECT_EQ(truthrl_reward(truthrl_classify("\\boxed{Lyon}", gold, none, o), false, o), -1.0);
  EXPECT_EQ(truthrl_classify("Paris", gold, none, o), TruthVerdict::kFormatFailure);
  EXPECT_EQ(truthrl_reward(TruthVerdict::kFormatFailure, false, o), -1.0);
  // OOK: any answer, even a correct one, is −1.
  EXPECT_EQ(truthrl_reward(TruthVerdict::kCorrect, true, ook), -1.0);
}

TEST(TruthRl, JudgeAndInvalidQuestionOrder) {
  TruthRlOptions o;
  int calls = 0;
  TruthJudge judge = [&](const std::string& pred, const std::string& gold) {
    ++calls;
    return pred == "City of Light" && gold == "paris";
  };
  EXPECT_EQ(truthrl_classify("\\boxed{City of Light}", {"paris"}, judge, o), TruthVerdict::kCorrect);
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_EQ(truthrl_classify("\\boxed{Paris}", {"paris"}, judge, o), TruthVerdict::kCorrect);
  EXPECT_EQ(calls, 0);  // exact match first, no judge call
  // False-premise question whose gold is "invalid question": gold first -> +1; as released -> −1.
  EXPECT_EQ(truthrl_classify("\\boxed{Invalid question.}", {"invalid question"}, {}, o), TruthVerdict::kCorrect);
  TruthRlOptions released = o;
  released.invalid_check = "before_match";
  EXPECT_EQ(truthrl_classify("\\boxed{Invalid question.}", {"invalid question"}, {}, released),
            TruthVerdict::kInvalidQuestion);
  EXPECT_EQ(truthrl_classify("\\boxed{invalid question}", {"paris"}, {}, o), TruthVerdict::kInvalidQuestion);
}

TEST(TruthRl, TruthfulnessIdentity) {
  // Random verdict lists: score = accuracy − hallucination rate = (2·correct + abstain − N)/N.
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    auto codes = torch::randint(0, 5, {1 + seed % 13}, torch::kLong);
    std::vector<TruthVerdict> v;
    double correct = 0, halluc = 0;
    for (int64_t i = 0; i < codes.numel(); ++i) {
      v.push_back(static_cast<TruthVerdict>(codes[i].item<int64_t>()));
      correct += v.back() == TruthVerdict::kCorrect;
      halluc += v.back() != TruthVerdict::kCorrect && v.back() != TruthVerdict::kAbstain;
    }
    const double n = static_cast<double>(v.size());
    EXPECT_NEAR(truthfulness_score(v), correct / n - halluc / n, 1e-12);
    // Mean ternary reward equals the truthfulness score.
    TruthRlOptions o;
    EXPECT_NEAR(truthrl_rewards(v, {}, o).mean().item<double>(), truthfulness_score(v), 1e-12);
  }
}

TEST(TruthRl, ReasoningEnhanced) {
  // outcome [+1, −1, 0], reasoning [1, 1, 1], w = 0.5: gated -> [1.5, −1, 0]; ungated -> [1.5, −0.5, 0.5].
  TruthRlOptions o;
  o.reasoning_weight = 0.5;
  auto out = testing::dt({1, -1, 0});
  auto rs = testing::dt({1, 1, 1});
  auto ok = torch::tensor({true, false, false});
  EXPECT_TRUE(torch::allclose(truthrl_reasoning_enhanced(out, rs, ok, o), testing::dt({1.5, -1, 0})));
  o.reasoning_gate_on_correct = false;
  EXPECT_TRUE(torch::allclose(truthrl_reasoning_enhanced(out, rs, ok, o), testing::dt({1.5, -0.5, 0.5})));
}

TEST(TruthRl, Reader) {
  TruthRlOptions o;
  EXPECT_TRUE(testing::read_yaml("  variant: binary\n", o, read_truthrl_options).empty());
  EXPECT_EQ(o.variant, "binary");
  EXPECT_EQ(testing::read_yaml("  variant: quaternary\n", o, read_truthrl_options).size(), 1u);
}

}  // namespace
}  // namespace keel::rewards
