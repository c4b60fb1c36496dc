// Tests of the arithmetic-task verifier (integer answers).
#include "rewards/verifiers/arithmetic.h"

#include <gtest/gtest.h>

#include "../reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::Case;
using nlohmann::json;

json gold(json a) { return json{{"answer", std::move(a)}}; }

TEST(Arithmetic, CanonicalInteger) {
  EXPECT_EQ(canonical_integer("1,234").value(), "1234");
  EXPECT_EQ(canonical_integer(" -0042 ").value(), "-42");
  EXPECT_EQ(canonical_integer("-0").value(), "0");
  EXPECT_EQ(canonical_integer("12.000").value(), "12");
  EXPECT_FALSE(canonical_integer("12.5").has_value());
  EXPECT_FALSE(canonical_integer("4 2").has_value());
  EXPECT_FALSE(canonical_integer("1,23").has_value());
  EXPECT_EQ(canonical_integer("12.").value(), "12");  // a sentence period
}

TEST(Arithmetic, TruthTable) {
  const std::vector<Case> cases = {
      {"<answer>1234</answer>", gold("1234"), true},
      {"\\boxed{1,234}", gold(1234), true},
      {"The answer is -56.", gold(-56), true},
      {"work\n#### 789", gold("789"), true},
      {"so 12 + 30 = 42", gold(42), true},
      {"<answer>42.0</answer>", gold(42), true},
      {"<answer>+42</answer>", gold(42), true},
      {"<answer>\xE2\x88\x92" "42</answer>", gold(-42), true},
      {"<answer>0042</answer>", gold(42), true},
      {"<answer>123456789012345678901234567890</answer>", gold("123456789012345678901234567890"), true},
      {"<answer> 42 </answer>", gold(42), true},
      {"<answer>x = 42</answer>", gold(42), true},
      {"<answer>42 apples</answer>", gold(42), true},
      {"The answer is 1{,}000.", gold(1000), true},
      {"\\boxed{-0}", gold(0), true},
      {"\\boxed{ 7 }", gold(7), true},
      {"Answer: 99", gold(99), true},
      {"<answer>$42$</answer>", gold(42), true},
      {"42.", gold(42), true},
      {"first 3, then 4, finally 5", gold(5), true},
      {"<think>7*6=42</think><answer>42</answer>", gold(42), true},
      {"<answer>1\\,000</answer>", gold(1000), true},
      {"\\boxed{12345678901234567890}", gold("12345678901234567890"), true},
      {"<answer>-1,000,000</answer>", gold(-1000000), true},
      {"The answer is 8", gold(json::array({7, 8})), true},
      {"<answer>0</answer>", gold(0), true},
      {"<answer>10</answer>", gold("010"), true},
      {"#### -3", gold(-3), true},
      {"\\boxed{56}\n", gold(56), true},
      {"I get 3.\n<answer>6</answer>", gold(6), true},
      // ---- false ----
      {"<answer>42.5</answer>", gold(42), false},
      {"<answer>41</answer>", gold(42), false},
      {"<answer>12,34</answer>", gold(1234), false},
      {"<answer>forty-two</answer> 42", gold(42), false},  // committed region without a number
      {"The answer is 4 2", gold(42), false},
      {"<answer>-42</answer>", gold(42), false},
      {"<answer>42</answer>", gold(-42), false},
      {"<answer>4.20</answer>", gold(42), false},
      {"", gold(42), false},
      {"no number", gold(42), false},
      {"<answer></answer>", gold(42), false},
      {"<answer>4e1</answer>", gold(40), false},
      {"0x2A", gold(42), false},
      {"<answer>42/1</answer>", gold(42), false},
      {"<answer>1,2345</answer>", gold(12345), false},
      {"<answer>3 + 4 = 7</answer>", gold(7), false},  // two numbers: not one committed integer
      {"42 is my guess but the answer is 43", gold(42), false},
      {"\\boxed{42}\\boxed{43}", gold(42), false},
      {"<answer>42</answer><answer>43</answer>", gold(42), false},
      {"<answer>1000</answer>", gold(100), false},
      {"<answer>100</answer>", gold(1000), false},
      {"<answer>42\xff</answer>", gold(42), false},
      {"<answer>--42</answer>", gold(42), false},
      {"<answer>4,2</answer>", gold(42), false},
      {"<answer>42%</answer>", gold(42), false},
      {"<answer>.42</answer>", gold(42), false},
      {"<answer>42,000</answer>", gold(42), false},
      {"The answer is 7", gold(json::array({8, 9})), false},
      {"<answer>123456789012345678901234567891</answer>", gold("123456789012345678901234567890"), false},
      {"<answer>1e100</answer>", gold(1), false},
  };
  const auto [t, f] = testing::run_table("task_arithmetic", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(Arithmetic, NonIntegerGoldIsACountedError) {
  auto s = testing::build_scheme("task_arithmetic");
  const RewardOutput out = s->score(testing::make_input({"<answer>1</answer>"}, {gold("one")}));
  EXPECT_EQ(out.metrics.at("scorer/errors"), 1.0);
}

}  // namespace
}  // namespace keel::rewards
