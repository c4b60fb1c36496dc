// Tests of the Countdown expression parser / verifier (rewards/verifiers/countdown.h) and Rational.
#include "rewards/verifiers/countdown.h"

#include <gtest/gtest.h>

#include "../reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::Case;
using nlohmann::json;

json task(std::vector<int64_t> numbers, int64_t target) { return json{{"numbers", numbers}, {"target", target}}; }

TEST(Rational, ArithmeticIsExactAndReduced) {
  auto a = *Rational::make(1, 3), b = *Rational::make(1, 6);
  EXPECT_EQ(a.add(b)->str(), "1/2");   // 1/3 + 1/6 = 2/6 + 1/6 = 1/2
  EXPECT_EQ(a.sub(b)->str(), "1/6");
  EXPECT_EQ(a.mul(b)->str(), "1/18");
  EXPECT_EQ(a.div(b)->str(), "2");
  EXPECT_FALSE(a.div(*Rational::make(0)).has_value());
  EXPECT_EQ(Rational::make(6, -4)->str(), "-3/2");
  EXPECT_EQ(Rational::parse("-0.250")->str(), "-1/4");
  EXPECT_FALSE(Rational::parse("1.5/2").has_value());
  EXPECT_FALSE(Rational::parse("abc").has_value());
  // Overflow is reported, not wrapped: (2^100)^2 does not fit in 127 bits.
  const auto big = *Rational::make(static_cast<Rational::Int>(1) << 100);
  EXPECT_FALSE(big.mul(big).has_value());
}

TEST(Countdown, EvaluatesWithRationals) {
  std::vector<int64_t> lits;
  // 6 / (1 - 3/4) = 6 / (1/4) = 24 exactly.
  EXPECT_EQ(eval_countdown_expression("6/(1-3/4)", &lits)->str(), "24");
  EXPECT_EQ(lits, (std::vector<int64_t>{6, 1, 3, 4}));
  // 1/49*49: in doubles (1/49)*49 = 0.9999999999999999; exactly 1 here.
  EXPECT_EQ(eval_countdown_expression("1/49*49", nullptr)->str(), "1");
  // Left associativity: 12/3/4 = (12/3)/4 = 1, 10-4-3 = 3.
  EXPECT_EQ(eval_countdown_expression("12/3/4", nullptr)->str(), "1");
  EXPECT_EQ(eval_countdown_expression("10-4-3", nullptr)->str(), "3");
  EXPECT_EQ(eval_countdown_expression("2+3*4", nullptr)->str(), "14");
  std::string err;
  EXPECT_FALSE(eval_countdown_expression("6/(4-4)", nullptr, &err).has_value());
  EXPECT_NE(err.find("division by zero"), std::string::npos) << err;
  EXPECT_FALSE(eval_countdown_expression("-2+3", nullptr, &err).has_value());
  EXPECT_NE(err.find("unary"), std::string::npos) << err;
  std::string deep = std::string(100, '(') + "1" + std::string(100, ')');
  EXPECT_FALSE(eval_countdown_expression(deep, nullptr, &err).has_value());
  EXPECT_NE(err.find("deep"), std::string::npos) << err;
}

TEST(Countdown, ExtractsTheExpression) {
  EXPECT_EQ(extract_countdown_expression("<think>..</think><answer> (2+3)*5 = 25 </answer>"), "(2+3)*5");
  EXPECT_EQ(extract_countdown_expression("<answer>25 = (2+3)*5</answer>"), "(2+3)*5");
  EXPECT_EQ(extract_countdown_expression("\\boxed{$2+3$}"), "2+3");
  EXPECT_EQ(extract_countdown_expression("thinking\n\n 2*3 \n"), "2*3");
}

TEST(Countdown, TruthTable) {
  const std::string deep = std::string(60, '(') + "2+3" + std::string(60, ')') + "*5";  // depth 60 <= 64
  json at_most_once = task({1, 3, 4, 6}, 24);
  at_most_once["use_all"] = false;
  const std::vector<Case> cases = {
      // ---- true ----
      {"<answer>6/(1-3/4)</answer>", task({1, 3, 4, 6}, 24), true},
      {"<answer> 6 / ( 1 - 3 / 4 ) </answer>", task({1, 3, 4, 6}, 24), true},
      {"<answer>6/(1-3/4) = 24</answer>", task({1, 3, 4, 6}, 24), true},
      {"<answer>24 = 6/(1-3/4)</answer>", task({1, 3, 4, 6}, 24), true},
      {"<answer>(2+3)*5</answer>", task({2, 3, 5}, 25), true},
      {"<answer>(3+2)\xC3\x97" "5</answer>", task({2, 3, 5}, 25), true},  // ×
      {"\\boxed{(2+3) \\times 5}", task({2, 3, 5}, 25), true},
      {"Let me think.\n(2 + 3) * 5 = 25", task({2, 3, 5}, 25), true},
      {"<answer>7/2*2</answer>", task({7, 2, 2}, 7), true},
      {"<answer>5*(5-1/5)</answer>", task({1, 5, 5, 5}, 24), true},
      {"<answer>8/(3-8/3)</answer>", task({3, 3, 8, 8}, 24), true},
      {"<answer>1/49*49</answer>", task({1, 49, 49}, 1), true},
      {"<answer>6*4*1</answer>", at_most_once, true},
      {"<answer>5+5+2</answer>", task({5, 5, 2}, 12), true},
      {"<answer>100 - 4*7</answer>", task({100, 4, 7}, 72), true},
      {"<answer>9/3+2</answer>", task({9, 3, 2}, 5), true},
      {"<answer>((9)/(3))+(2)</answer>", task({9, 3, 2}, 5), true},
      {"<answer>4-6</answer>", task({4, 6}, -2), true},
      {"<answer>1+1</answer> no wait <answer>(2+3)*5</answer>", task({2, 3, 5}, 25), true},
      {"<think>try 2*3*5=30</think><answer>(2+3)*5</answer>", task({2, 3, 5}, 25), true},
      {"<answer>12/3/4</answer>", task({12, 3, 4}, 1), true},
      {"<answer>12/(3*4)</answer>", task({12, 3, 4}, 1), true},
      {"<answer>$(2+3)\\cdot 5$</answer>", task({2, 3, 5}, 25), true},
      {"<answer>(2+3)\xC3\xB7" "1*5</answer>", task({2, 3, 1, 5}, 25), true},  // ÷
      {"<answer>50/2</answer>", task({50, 2}, 25), true},
      {"<answer>1+2+3+4</answer>", task({1, 2, 3, 4}, 10), true},
      {"<answer>4*3*2*1</answer>", task({1, 2, 3, 4}, 24), true},
      {"<answer>6/2</answer>", task({6, 2}, 3), true},
      {"<answer>(75+25)*3</answer>", task({75, 25, 3}, 300), true},
      {"<answer>1+1+1+1</answer>", task({1, 1, 1, 1}, 4), true},
      {"<answer>" + deep + "</answer>", task({2, 3, 5}, 25), true},
      // ---- false ----
      {"<answer>(2+3)*5+1</answer>", task({2, 3, 5}, 25), false},    // 1 not given
      {"<answer>2*3*5</answer>", task({2, 3, 5}, 25), false},        // 30
      {"<answer>(2+3)*5*5</answer>", task({2, 3, 5}, 25), false},    // 5 twice
      {"<answer>-2+3*5+12</answer>", task({2, 3, 5, 12}, 25), false},  // unary minus
      {"<answer>5(2+3)</answer>", task({2, 3, 5}, 25), false},       // implicit product
      {"<answer>2^3+5</answer>", task({2, 3, 5}, 13), false},
      {"<answer>(2+3*5</answer>", task({2, 3, 5}, 17), false},       // unbalanced
      {"<answer>2.5*2*5</answer>", task({2, 5, 2}, 25), false},      // decimal literal
      {"<answer>6*4*1</answer>", task({1, 3, 4, 6}, 24), false},     // 3 unused (use_all)
      {"<answer>6/(1-3/4.0)</answer>", task({1, 3, 4, 6}, 24), false},
      {"", task({2, 3, 5}, 25), false},
      {"I don't know", task({2, 3, 5}, 25), false},
      {"<answer>eval('(2+3)*5')</answer>", task({2, 3, 5}, 25), false},
      {"<answer>6/(4-4)</answer>", task({6, 4, 4}, 0), false},       // division by zero
      {"<answer>(2+3)*5</answer>", task({2, 3, 5}, 24), false},
      {"<answer>(2+3)*5 = 25 = 25</answer>", task({2, 3, 5}, 25), false},
      {"<answer>25</answer>", task({2, 3, 5}, 25), false},
      {"<answer>" + std::string(100, '(') + "2+3" + std::string(100, ')') + "*5</answer>", task({2, 3, 5}, 25), false},
      {"<answer>2+3+5+15</answer>", task({2, 3, 5}, 25), false},
      {"<answer>+2+3*5</answer>", task({2, 3, 5}, 17), false},
      {"<answer>2--3</answer>", task({2, 3}, 5), false},
      {"<answer>99999999999999999999*2</answer>", task({2}, 0), false},
      {"<answer>(2+3)*5</answer>", task({2, 3, 6}, 25), false},
      {"<answer>2**3</answer>", task({2, 3}, 8), false},
      {"<answer>2 3 5</answer>", task({2, 3, 5}, 10), false},
      {"<answer>(2+3)*5</answer><answer>2+3+5</answer>", task({2, 3, 5}, 25), false},
      {"<answer>5*5</answer>", task({5, 2, 3}, 25), false},
      {"\\boxed{2+3}*5", task({2, 3, 5}, 25), false},
      {"<answer>2/3*3*5</answer>", task({2, 3, 5}, 10), false},
      {"<answer>(2+3)*5</answer>\xff", task({2, 3, 5}, 25), false},  // invalid UTF-8: malformed
      {"<answer>(2+3)*5</answer>", json{{"numbers", {2, 3, 5}}}, false},  // no target: error -> fallback
  };
  const auto [t, f] = testing::run_table("task_countdown", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(Countdown, FormatScoreAndAtMostOnceParam) {
  auto s = testing::build_scheme("task_countdown", "{use_all: false, format_score: 0.1}");
  const auto r = testing::rewards_of(
      *s, testing::make_input({"<answer>2*5</answer>", "<answer>2*3</answer>", "<answer>2*2</answer>", "<answer>x</answer>"},
                              {task({2, 3, 5}, 10), task({2, 3, 5}, 10), task({2, 3, 5}, 4), task({2, 3, 5}, 4)}));
  EXPECT_FLOAT_EQ(r[0], 1.0f);  // correct with one number unused (at most once)
  EXPECT_FLOAT_EQ(r[1], 0.1f);  // valid, wrong value -> format_score
  EXPECT_FLOAT_EQ(r[2], 0.0f);  // 2 used twice
  EXPECT_FLOAT_EQ(r[3], 0.0f);  // not an expression
}

}  // namespace
}  // namespace keel::rewards
