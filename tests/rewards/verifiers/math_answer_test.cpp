// Tests of math answer extraction and equivalence (rewards/verifiers/math_answer.h) and of the
// registered math_answer verifier: a truth table of true and false cases with adversarial formatting.
#include "rewards/verifiers/math_answer.h"

#include <gtest/gtest.h>

#include "../reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::Case;
using nlohmann::json;

json gold(json a) { return json{{"answer", std::move(a)}}; }

TEST(MathAnswer, ExtractsLastBoxedWithNestedBraces) {
  EXPECT_EQ(extract_math_answer("so \\boxed{\\frac{\\sqrt{3}}{2}} done").value(), "\\frac{\\sqrt{3}}{2}");
  EXPECT_EQ(extract_math_answer("\\boxed{1} then \\boxed{2}").value(), "2");
  EXPECT_EQ(extract_math_answer("\\boxed 7 is it").value(), "7");
  EXPECT_EQ(extract_math_answer("The answer is $\\frac{1}{2}$. Done").value(), "$\\frac{1}{2}$");
  EXPECT_EQ(extract_math_answer("work...\n#### 1,234").value(), "1,234");
  EXPECT_EQ(extract_math_answer("we get 3, then 17.").value(), "17");
  EXPECT_FALSE(extract_math_answer("no digits at all").has_value());
}

TEST(MathAnswer, NormalisesLatex) {
  EXPECT_EQ(normalize_math_answer("$ \\dfrac{1}{2} $."), "\\frac{1}{2}");
  EXPECT_EQ(normalize_math_answer("\\left( 1, 2 \\right)"), "(1,2)");
  EXPECT_EQ(normalize_math_answer("x = 5"), "5");
  EXPECT_EQ(normalize_math_answer("90^\\circ"), "90");
  EXPECT_EQ(normalize_math_answer("\\text{Evelyn}"), "Evelyn");
}

TEST(MathAnswer, ParsesNumbersExactly) {
  // 0.125 = 125/1000 = 1/8; "\frac{-3}{6}" = -1/2; "1,234.50" = 123450/100 = 2469/2.
  EXPECT_EQ(parse_math_number("0.125")->value.str(), "1/8");
  EXPECT_EQ(parse_math_number("\\frac{-3}{6}")->value.str(), "-1/2");
  EXPECT_EQ(parse_math_number("1,234.50")->value.str(), "2469/2");
  EXPECT_TRUE(parse_math_number("50%")->percent);
  EXPECT_FALSE(parse_math_number("1,23").has_value());
  EXPECT_FALSE(parse_math_number("\\frac{1}{0}").has_value());
  EXPECT_FALSE(parse_math_number("x+1").has_value());
}

TEST(MathAnswer, TruthTable) {
  const std::vector<Case> cases = {
      // ---- true ----
      {"\\boxed{42}", gold("42"), true},
      {"So the result is \\boxed{\\frac{1}{2}}.", gold("0.5"), true},
      {"\\boxed{\\dfrac{3}{4}}", gold("\\frac{3}{4}"), true},
      {"\\boxed{0.75}", gold("3/4"), true},
      {"\\boxed{1,000}", gold("1000"), true},
      {"\\boxed{1{,}000}", gold("1000"), true},
      {"\\boxed{-5}", gold("-5"), true},
      {"\\boxed{\xE2\x88\x92" "5}", gold("-5"), true},  // U+2212 minus
      {"\\boxed{+7}", gold("7"), true},
      {"\\boxed{2.50}", gold("2.5"), true},
      {"\\boxed{3.0}", gold("3"), true},
      {"\\boxed{50\\%}", gold("50"), true},
      {"\\boxed{50\\%}", gold("0.5"), true},
      {"The answer is 12.", gold("12"), true},
      {"Final answer: $\\frac{7}{2}$", gold("3.5"), true},
      {"steps...\n#### 1,234", gold("1234"), true},
      {"I computed 3 then 5, so 17", gold("17"), true},
      {"\\boxed{\\frac{\\sqrt{3}}{2}}", gold("\\frac{\\sqrt{3}}{2}"), true},
      {"\\boxed{x = 5}", gold("5"), true},
      {"\\boxed{ 5 }", gold("5"), true},
      {"\\boxed{\\left(1, 2\\right)}", gold("(1,2)"), true},
      {"\\boxed{90^\\circ}", gold("90"), true},
      {"\\boxed{5 \\text{ cm}}", gold("5"), true},
      {"\\boxed{\\text{Evelyn}}", gold("Evelyn"), true},
      {"first \\boxed{3}, on reflection \\boxed{4}", gold("4"), true},
      {"\\boxed{-\\frac{1}{3}}", gold("-1/3"), true},
      {"\\boxed{\\frac{-1}{3}}", gold("-1/3"), true},
      {"\\boxed{\\frac12}", gold("0.5"), true},
      {"\\boxed{007}", gold("7"), true},
      {"\\boxed{.5}", gold("1/2"), true},
      {"<answer>36</answer>", gold("36"), true},
      {"\\boxed{six}", gold(json::array({"6", "six"})), true},
      {"\\boxed{\\$18.00}", gold("18"), true},
      {"\\boxed{1/3}", gold("\\frac{1}{3}"), true},
      {"\\boxed{10\\%}", gold("10%"), true},
      {"The answer is $\\boxed{2}$.", gold(2), true},
      {"\\boxed{1/4}", gold(0.25), true},
      {"\\boxed{(1,2)}", gold("(1, 2)"), true},
      {"\\boxed{1,2,3}", gold("1, 2, 3"), true},
      {"\\boxed{\\frac{1}{2}, 3}", gold("0.5,3"), true},
      // ---- false ----
      {"\\boxed{41}", gold("42"), false},
      {"\\boxed{0.33}", gold("1/3"), false},
      {"\\boxed{-5}", gold("5"), false},
      {"\\boxed{1,000}", gold("1"), false},
      {"no answer here", gold("3"), false},
      {"", gold("0"), false},  // malformed: fallback 0
      {"\\boxed{}", gold("0"), false},
      {"\\boxed{50}", gold("0.5"), false},
      {"\\boxed{2.51}", gold("2.5"), false},
      {"\\boxed{1,2}", gold("12"), false},
      {"\\boxed{12,34}", gold("1234"), false},
      {"\\boxed{\\frac{1}{2}}", gold("2"), false},
      {"\\boxed{x+1}", gold("1+x"), false},  // no CAS: documented
      {"The answer is 7. Or maybe 8", gold("8"), false},
      {"\\boxed{(1,2)}", gold("(2,1)"), false},
      {"\\boxed{[1,2]}", gold("(1,2)"), false},
      {"\\boxed{1e3}", gold("1000"), false},
      {"I think it's 3 or 4", gold("3"), false},
      {"\\boxed{-0.5}", gold("1/2"), false},
      {"\\boxed{\\frac{1}{0}}", gold("0"), false},
      {"\\boxed{Evelyn}", gold("Evelina"), false},
      {"\\boxed{3}", gold(json::array({"4", "5"})), false},
      {"\\boxed{1000000}", gold("1,000,00"), false},
      {"42 is wrong; the answer is 41", gold("42"), false},
      {"\\boxed{4.2}", gold("42"), false},
      {"\\boxed{\\sqrt{2}}", gold("2"), false},
      {"\\boxed{\xE2\x88\x92" "3}", gold("3"), false},
      {"\\boxed{0.1+0.2}", gold("0.3"), false},
      {"\\boxed{99\\%}", gold("0.9"), false},
      {"\\boxed{\\frac{1}{2}}", gold("1/3"), false},
      {"\\boxed{1,2,3}", gold("1,2,4"), false},
      {"\\boxed{7}\\boxed{8}", gold("7"), false},
  };
  const auto [t, f] = testing::run_table("math_answer", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(MathAnswer, CustomKeyAndRewardValues) {
  auto s = testing::build_scheme("math_answer", "{answer_key: solution, correct: 2.0, wrong: -1.0}");
  const auto r = testing::rewards_of(*s, testing::make_input({"\\boxed{3}", "\\boxed{4}"},
                                                             {json{{"solution", "3"}}, json{{"solution", "3"}}}));
  EXPECT_FLOAT_EQ(r[0], 2.0f);
  EXPECT_FLOAT_EQ(r[1], -1.0f);
}

TEST(MathAnswer, MissingGoldIsACountedErrorWithFallback) {
  auto s = testing::build_scheme("math_answer");
  const RewardOutput out = s->score(testing::make_input({"\\boxed{3}"}, {json{{"other", 1}}}));
  EXPECT_FLOAT_EQ(out.rewards[0].item<float>(), 0.0f);
  EXPECT_EQ(out.metrics.at("scorer/errors"), 1.0);
}

}  // namespace
}  // namespace keel::rewards
