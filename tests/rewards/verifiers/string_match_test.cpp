// Tests of the string-answer verifiers: match_exact, match_normalized, match_choice.
#include "rewards/verifiers/string_match.h"

#include <gtest/gtest.h>

#include "../reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::Case;
using nlohmann::json;

json gold(json a) { return json{{"answer", std::move(a)}}; }

TEST(StringMatch, NormalisesSquadStyle) {
  EXPECT_EQ(normalize_text_answer("The  Eiffel-Tower!"), "eiffeltower");
  EXPECT_EQ(normalize_text_answer("  An apple, a day. "), "apple day");
  EXPECT_EQ(normalize_text_answer("I don't know"), "i dont know");
  EXPECT_EQ(normalize_text_answer("theater"), "theater");  // articles only as whole words
}

TEST(StringMatch, ExactTruthTable) {
  const std::vector<Case> cases = {
      {"Paris", gold("Paris"), true},
      {"  Paris \n", gold("Paris"), true},
      {"\\boxed{Paris}", gold("Paris"), true},
      {"<answer>Paris</answer>", gold("Paris"), true},
      {"<answer> Paris </answer>", gold("Paris"), true},
      {"The answer is Paris.", gold("Paris"), true},
      {"reasoning...\nAnswer: Paris", gold("Paris"), true},
      {"paris", gold(json::array({"Paris", "paris"})), true},
      {"42", gold(42), true},
      {"New York", gold("New York"), true},
      {"\\boxed{Rome} but <answer>Paris</answer>", gold("Rome"), true},  // \boxed wins in auto
      {"Mount Everest", gold(" Mount Everest "), true},
      {"O'Brien", gold("O'Brien"), true},
      {"日本", gold("日本"), true},
      {"<answer>a, b</answer>", gold("a, b"), true},
      {"x", gold("x"), true},
      {"The answer is: Paris", gold("Paris"), true},
      {"\\boxed{\\text{yes}}", gold("\\text{yes}"), true},
      {"yes", gold(json::array({"no", "yes"})), true},
      {"3.14", gold("3.14"), true},
      {"-7", gold("-7"), true},
      {"Answer: True", gold("True"), true},
      {"<answer>\nParis\n</answer>", gold("Paris"), true},
      {"ANSWER IS Lima", gold("Lima"), true},
      {"so the final answer is Oslo", gold("Oslo"), true},
      {"\\boxed{ Paris }", gold("Paris"), true},
      {"C++", gold("C++"), true},
      {"a\tb", gold("a\tb"), true},
      {"(1, 2)", gold("(1, 2)"), true},
      {"Tokyo", gold(json::array({"Kyoto", "Tokyo"})), true},
      // ---- false ----
      {"paris", gold("Paris"), false},  // case-sensitive by default
      {"Paris!", gold("Paris"), false},
      {"The capital is Paris", gold("Paris"), false},
      {"\\boxed{Lyon}", gold("Paris"), false},
      {"", gold("Paris"), false},
      {"Pari s", gold("Paris"), false},
      {"Paris France", gold("Paris"), false},
      {"<answer></answer>", gold("Paris"), false},
      {"<answer>Lyon</answer> Paris", gold("Paris"), false},
      {"Paris", gold("Lyon"), false},
      {"42.0", gold(42), false},
      {"\\boxed{Paris", gold("Paris"), false},
      {"The answer is Lyon. Paris", gold("Paris"), false},
      {"Paris\xff", gold("Paris"), false},  // invalid UTF-8
      {"Paris Paris", gold("Paris"), false},
      {"yes", gold(json::array({"no", "maybe"})), false},
      {"x ", gold("y"), false},
      {"NEW YORK", gold("New York"), false},
      {"-7", gold("7"), false},
      {"3.140", gold("3.14"), false},
      {"(1,2)", gold("(1, 2)"), false},
      {"Answer: Paris and Lyon", gold("Paris"), false},
      {"\\boxed{}", gold("Paris"), false},
      {"Tokyo.", gold("Tokyo"), false},
      {"Oslo is the answer", gold("Oslo"), false},
      {"<answer>Paris</answer><answer>Rome</answer>", gold("Paris"), false},
      {"Parıs", gold("Paris"), false},  // dotless i
      {" ", gold("Paris"), false},
      {"Answer:", gold("Paris"), false},
      {"True", gold("true"), false},
  };
  const auto [t, f] = testing::run_table("match_exact", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(StringMatch, ExactCaseInsensitiveAndRegionParams) {
  const auto [t, f] = testing::run_table("match_exact", "{case_sensitive: false, region: last_line}",
                                         {{"thinking\nPARIS", gold("Paris"), true},
                                          {"\\boxed{Paris}\nsomething else", gold("Paris"), false}});
  EXPECT_EQ(t + f, 2);
  EXPECT_THROW(testing::build_scheme("match_exact", "{region: everywhere}"), Error);
}

TEST(StringMatch, NormalizedTruthTable) {
  const std::vector<Case> cases = {
      {"paris", gold("Paris"), true},
      {"Paris!", gold("Paris"), true},
      {"The Paris", gold("Paris"), true},
      {"the  paris.", gold("Paris"), true},
      {"The answer is: PARIS", gold("Paris"), true},
      {"\\boxed{Paris}", gold("paris"), true},
      {"<answer>The Eiffel Tower</answer>", gold("eiffel tower"), true},
      {"Eiffel-Tower", gold("EiffelTower"), true},
      {"I don't know", gold("i dont know"), true},
      {"  new   york ", gold("New York"), true},
      {"An apple", gold("apple"), true},
      {"A.B.C.", gold("abc"), true},
      {"\"Hamlet\"", gold("Hamlet"), true},
      {"Hamlet", gold(json::array({"Macbeth", "hamlet"})), true},
      {"NEW YORK", gold("New York"), true},
      {"george washington", gold("George Washington"), true},
      {"(Paris)", gold("Paris"), true},
      {"Paris;", gold("Paris"), true},
      {"the the Paris", gold("Paris"), true},
      {"Answer: 42", gold(42), true},
      {"<answer>  yes  </answer>", gold("Yes"), true},
      {"The answer is no.", gold("No"), true},
      {"\\boxed{the Nile}", gold("Nile"), true},
      {"Rock 'n' roll", gold("rock n roll"), true},
      {"U.S.A.", gold("USA"), true},
      {"e-mail", gold("email"), true},
      {"Mr. Smith", gold("mr smith"), true},
      {"Tokyo\n", gold("tokyo"), true},
      {"ok!!!", gold("OK"), true},
      {"Tea, please", gold("tea please"), true},
      // ---- false ----
      {"Lyon", gold("Paris"), false},
      {"Parisian", gold("Paris"), false},
      {"Paris France", gold("Paris"), false},
      {"", gold("Paris"), false},
      {"!!!", gold("Paris"), false},  // normalises to nothing
      {"The", gold("the"), false},    // both empty after removing articles: no credit
      {"Pari", gold("Paris"), false},
      {"new-york city", gold("New York"), false},
      {"The capital is Paris", gold("Paris"), false},
      {"<answer>Lyon</answer>", gold("Paris"), false},
      {"\\boxed{Lyon} Paris", gold("Paris"), false},
      {"Hamlet", gold(json::array({"Macbeth", "Othello"})), false},
      {"43", gold(42), false},
      {"yes", gold("no"), false},
      {"not Paris", gold("Paris"), false},
      {"Paris\xc3", gold("Paris"), false},  // truncated UTF-8
      {"P a r i s", gold("Paris"), false},
      {"Paris Paris", gold("Paris"), false},
      {"Answer: Lyon", gold("Paris"), false},
      {"The answer is Rome. Paris", gold("Paris"), false},
      {"tokyo japan", gold("tokyo"), false},
      {"42.5", gold(42), false},
      {"Smith", gold("mr smith"), false},
      {"eiffel", gold("eiffel tower"), false},
      {"Nil", gold("Nile"), false},
      {"<answer></answer>", gold("Paris"), false},
      {"\\boxed{}", gold("Paris"), false},
      {"USSR", gold("USA"), false},
      {"no", gold("No way"), false},
      {"Answer:", gold("Paris"), false},
  };
  const auto [t, f] = testing::run_table("match_normalized", "{}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

TEST(StringMatch, ChoiceTruthTable) {
  const json b = gold("B");
  json with_texts = gold("B");
  with_texts["choices"] = {"London", "Paris", "Rome", "Madrid"};
  const std::vector<Case> cases = {
      {"B", b, true},
      {"(B)", b, true},
      {"The answer is B.", b, true},
      {"The answer is (B) Paris", b, true},
      {"\\boxed{B}", b, true},
      {"<answer>B</answer>", b, true},
      {"**B**", b, true},
      {"Answer: b)", b, true},
      {"Let me think.\nB) Paris", b, true},
      {"\\boxed{\\text{B}}", b, true},
      {"The answer is Paris", with_texts, true},
      {"B", gold(1), true},  // 0-based index
      {"B", gold("(B)"), true},
      {"Answer: [B]", b, true},
      {"B.", b, true},
      {"(b)", b, true},
      {"reasoning\n\nFinal answer: B", b, true},
      {"The correct option is\n(B)", b, true},
      {"\\boxed{(B)}", b, true},
      {"<answer> (B) </answer>", b, true},
      {"The answer is B: Paris", b, true},
      {"A is wrong. C is wrong.\nB", b, true},
      {"$\\boxed{B}$", b, true},
      {"answer is **B**", b, true},
      {"B) Paris", with_texts, true},
      {"<answer>Paris</answer>", with_texts, true},
      {"Answer: B", gold("b"), true},
      {"The answer is (B).", b, true},
      {"B:", b, true},
      {"**(B)**", b, true},
      // ---- false ----
      {"A", b, false},
      {"(C)", b, false},
      {"The answer is A", b, false},
      {"I think it's between (A) and (B)", b, false},
      {"b", b, false},  // a bare lower-case letter is not an answer
      {"B is wrong, the answer is C", b, false},
      {"A cat", b, false},
      {"\\boxed{E}", with_texts, false},  // only 4 choices
      {"(B) or (C)", b, false},          // hedging
      {"", b, false},
      {"Paris", b, false},  // no choice texts in this sample
      {"The answer is London", with_texts, false},
      {"I don't know", b, false},
      {"\\boxed{C}", b, false},
      {"<answer>D</answer>", b, false},
      {"B) Paris C) Rome", b, false},
      {"Answer: A) London", with_texts, false},
      {"The answer is (b) or (c)", b, false},
      {"BB", b, false},
      {"Bee", b, false},
      {"The answer is C. B was tempting", b, false},
      {"\\boxed{B}\\boxed{C}", b, false},
      {"B", gold(2), false},
      {"B", gold("C"), false},
      {"Answer:", b, false},
      {"(", b, false},
      {"()", b, false},
      {"B\xff", b, false},
      {"Because", b, false},
      {"Both A and C", b, false},
  };
  const auto [t, f] = testing::run_table("match_choice", "{letters: ABCDE}", cases);
  EXPECT_GE(t, 30);
  EXPECT_GE(f, 30);
}

}  // namespace
}  // namespace keel::rewards
