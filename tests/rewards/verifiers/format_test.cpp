// Tests of the format verifiers: format_tags (<think>/<answer> structure) and format_regex.
#include "rewards/verifiers/format.h"

#include <gtest/gtest.h>

#include "../reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::Case;
using nlohmann::json;

TEST(FormatTags, TruthTable) {
  const json m = json::object();
  const std::vector<Case> cases = {
      {"<think>r</think><answer>a</answer>", m, true},
      {"<think>reasoning</think>\n<answer>42</answer>", m, true},
      {"  <think>\nstep 1\nstep 2\n</think>\n\n<answer>\n42\n</answer>\n", m, true},
      {"<think>a < b and c > d</think><answer>x</answer>", m, true},
      {"<think>I used \\boxed{3}</think><answer>\\boxed{3}</answer>", m, true},
      {"<think>多语言</think><answer>答案</answer>", m, true},
      {"<think>r</think> \t <answer>a</answer>", m, true},
      {"<think>the <answer> tag comes later</think><answer>a</answer>", m, false},  // nested tag
      {"<think>r</think><answer>a b c</answer>", m, true},
      {"<think>x</think><answer>1</answer>\n\n", m, true},
      {"<think>long " + std::string(5000, 'x') + "</think><answer>y</answer>", m, true},
      {"<think>r\n</think><answer>\n(1, 2)\n</answer>", m, true},
      {"<think>(</think><answer>)</answer>", m, true},
      {"<think>&lt;</think><answer>&gt;</answer>", m, true},
      {"<think>think</think><answer>answer</answer>", m, true},
      {"<think>r</think><answer>-</answer>", m, true},
      {"\n<think>r</think><answer>a</answer>", m, true},
      {"<think>r</think>\r\n<answer>a</answer>", m, true},
      {"<think> r </think><answer> a </answer>", m, true},
      {"<think>check: 2+2=4</think><answer>4</answer>", m, true},
      {"<think>r</think><answer>a</answer> ", m, true},
      {"<think>...</think><answer>...</answer>", m, true},
      {"<think>1</think><answer>2</answer>", m, true},
      {"<think>\\frac{1}{2}</think><answer>\\frac{1}{2}</answer>", m, true},
      {"<think>a</think>\n\n\n<answer>b</answer>", m, true},
      {"<think>r</think><answer><b>bold</b></answer>", m, true},
      {"<think>r</think><answer>a</answer>\t", m, true},
      {"<think>r</think><answer>😀</answer>", m, true},
      {"<think>r\n\n\n</think><answer>a</answer>", m, true},
      {"<think>x y z</think><answer>x y z</answer>", m, true},
      {"<think>last</think><answer>first</answer>", m, true},
      // ---- false ----
      {"<answer>a</answer>", m, false},                           // think required
      {"<think>r</think>", m, false},                             // no answer
      {"<think></think><answer>a</answer>", m, false},            // empty think
      {"<think>r</think><answer>  </answer>", m, false},          // empty answer
      {"<answer>a</answer><think>r</think>", m, false},           // wrong order
      {"prefix <think>r</think><answer>a</answer>", m, false},    // text outside
      {"<think>r</think><answer>a</answer> suffix", m, false},
      {"<think>r</think> between <answer>a</answer>", m, false},
      {"<think>r</think><answer>a</answer><answer>b</answer>", m, false},
      {"<think>r</think><think>s</think><answer>a</answer>", m, false},
      {"<think>r<answer>a</answer></think>", m, false},
      {"<think>r</think><answer>a", m, false},
      {"<think>r<answer>a</answer>", m, false},
      {"<Think>r</Think><answer>a</answer>", m, false},           // tags are case-sensitive
      {"<think >r</think><answer>a</answer>", m, false},
      {"<think>r</think ><answer>a</answer>", m, false},
      {"", m, false},
      {"plain text", m, false},
      {"<think>r</think><answer>a</answer></answer>", m, false},
      {"</think><think>r</think><answer>a</answer>", m, false},
      {"<think>r</think></answer><answer>a", m, false},
      {"<answer>a</answer></think>", m, false},
      {"<think>r</think>\n<answer>a</answer>\n<think>s</think>", m, false},
      {"<think>r</think><answer></answer>", m, false},
      {"<think>r</think><answr>a</answr>", m, false},
      {"<think>r</think><answer>a</answer>\xff", m, false},  // invalid UTF-8
      {"<think>r</think>.<answer>a</answer>", m, false},
      {"<think>r<think></think><answer>a</answer>", m, false},
      {"<<think>r</think><answer>a</answer>", m, false},
      {"<think>r</think><answer>a</answer>>", m, false},
      {"<think>\n</think><answer>a</answer>", m, false},
  };
  const auto [t, f] = testing::run_table("format_tags", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(FormatTags, OptionalThinkAndOutsideText) {
  TagFormatOptions o;
  o.require_think = false;
  EXPECT_TRUE(check_tag_format("<answer>a</answer>", o));
  EXPECT_FALSE(check_tag_format("<think>r</think>", o));
  o.allow_outside = true;
  EXPECT_TRUE(check_tag_format("Sure! <think>r</think><answer>a</answer> Bye", o));
  EXPECT_FALSE(check_tag_format("<think>r</think> x <answer>a</answer>", o));  // still nothing between
  o.think_tag = "reasoning";
  o.answer_tag = "final";
  EXPECT_TRUE(check_tag_format("<reasoning>r</reasoning><final>a</final>", o));
}

TEST(FormatRegex, TruthTable) {
  const json m = json::object();
  // full match of "<digits>" optionally signed, or "Answer: <digits>" lines.
  const std::string params = "{pattern: '^(-?[0-9]+|Answer: [0-9]+)$', mode: full}";
  const std::vector<Case> cases = {
      {"1", m, true},           {"42", m, true},          {"-7", m, true},           {"0", m, true},
      {"123456789", m, true},   {"Answer: 5", m, true},   {"Answer: 123", m, true},  {"-0", m, true},
      {"007", m, true},         {"99", m, true},          {"-123", m, true},         {"Answer: 0", m, true},
      {"10", m, true},          {"11", m, true},          {"12", m, true},           {"13", m, true},
      {"14", m, true},          {"15", m, true},          {"16", m, true},           {"17", m, true},
      {"18", m, true},          {"19", m, true},          {"20", m, true},           {"21", m, true},
      {"22", m, true},          {"23", m, true},          {"24", m, true},           {"25", m, true},
      {"26", m, true},          {"27", m, true},
      // ---- false ----
      {"", m, false},           {" 1", m, false},         {"1 ", m, false},          {"1.5", m, false},
      {"+1", m, false},         {"--1", m, false},        {"one", m, false},         {"Answer:5", m, false},
      {"answer: 5", m, false},  {"Answer: -5", m, false}, {"1\n2", m, false},        {"1a", m, false},
      {"a1", m, false},         {"Answer: ", m, false},   {"-", m, false},           {"1,000", m, false},
      {"1e5", m, false},        {"0x1F", m, false},       {"Answer: 5 ", m, false},  {"\xff", m, false},
      {"١٢", m, false},         {"12-", m, false},        {"(1)", m, false},         {"1/2", m, false},
      {"$1", m, false},         {"1%", m, false},         {"Answer: 5\n", m, false}, {"x", m, false},
      {"Answer: five", m, false}, {"--", m, false},
  };
  const auto [t, f] = testing::run_table("format_regex", params, cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(FormatRegex, SearchModeAndLongInputDoesNotOverflowTheStack) {
  auto s = testing::build_scheme("format_regex", "{pattern: '(a|b)*c', max_chars: 2000000}");
  // 256 KiB of 'a' then 'c': libstdc++'s default (backtracking) executor recurses per character and
  // segfaults on this input with an 8 MB stack (checked by hand); the NFA executor does not.
  const std::string long_text = std::string((1 << 18) - 1, 'a') + "c";
  const auto r = testing::rewards_of(*s, testing::make_input({"xxabcxx", "xxabxx", long_text},
                                                             {json::object(), json::object(), json::object()}));
  EXPECT_FLOAT_EQ(r[0], 1.0f);
  EXPECT_FLOAT_EQ(r[1], 0.0f);
  EXPECT_FLOAT_EQ(r[2], 1.0f);
}

TEST(FormatRegex, BadPatternIsAConfigErrorWithItsLine) {
  try {
    testing::build_scheme("format_regex", "pattern: '([a-'\n");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("params.yaml:1: params.pattern: invalid regex"), std::string::npos) << e.what();
  }
  EXPECT_THROW(testing::build_scheme("format_regex", "{}"), Error);  // pattern is required
}

}  // namespace
}  // namespace keel::rewards
