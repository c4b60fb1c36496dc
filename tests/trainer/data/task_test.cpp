// Built-in tasks: deterministic, split-separated, with correct gold answers and validated knobs.
#include "trainer/data/task.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "base/reader.h"
#include "rewards/verifiers/arithmetic.h"
#include "rewards/verifiers/string_match.h"
#include "trainer/data/tasks/arithmetic_steps.h"
#include <nlohmann/json.hpp>

namespace keel::data {
namespace {

std::unique_ptr<Task> make(const std::string& name, const std::string& yaml = "{}", std::vector<std::string>* errors = nullptr) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  auto root = config::parse_yaml_string("p: " + yaml + "\n", "t.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "", d);
  std::unique_ptr<Task> t;
  r.section("p", "", [&](config::Reader& s) { t = reg.get(name).fn(s); });
  if (errors) *errors = d.errors();
  else EXPECT_TRUE(d.ok()) << d.errors()[0];
  return t;
}

// Slow reference: evaluate "a op b op c" with * binding tighter, by two passes over tokens.
int64_t eval_reference(const std::string& expr) {
  std::vector<int64_t> vals;
  std::vector<char> ops;
  size_t i = 0;
  while (i < expr.size()) {
    size_t j = i;
    while (j < expr.size() && isdigit(static_cast<unsigned char>(expr[j]))) ++j;
    vals.push_back(std::stoll(expr.substr(i, j - i)));
    if (j < expr.size()) ops.push_back(expr[j]);
    i = j + 1;
  }
  for (size_t k = 0; k < ops.size();) {
    if (ops[k] == '*') {
      vals[k] *= vals[k + 1];
      vals.erase(vals.begin() + static_cast<long>(k) + 1);
      ops.erase(ops.begin() + static_cast<long>(k));
    } else {
      ++k;
    }
  }
  int64_t v = vals[0];
  for (size_t k = 0; k < ops.size(); ++k) v = ops[k] == '+' ? v + vals[k + 1] : v - vals[k + 1];
  return v;
}

TEST(ArithmeticTask, DeterministicAndCorrect) {
  auto t = make("arithmetic", "{min_digits: 1, max_digits: 3, operands: 3, ops: '+-*'}");
  for (uint64_t i = 0; i < 200; ++i) {
    const auto a = t->make(7, Split::kTrain, i);
    const auto b = t->make(7, Split::kTrain, i);
    EXPECT_EQ(a.prompt, b.prompt);
    const std::string quoted = a.meta.at("expression");
    const std::string expr = quoted.substr(1, quoted.size() - 2);
    EXPECT_EQ(a.prompt, expr + "=");
    EXPECT_EQ(a.answer, std::to_string(eval_reference(expr))) << expr;
    EXPECT_EQ(t->gold_response(a), a.answer);
  }
  EXPECT_EQ(t->verifier(), "task_arithmetic");
}

TEST(ArithmeticTask, SeedsAndSplitsGiveDifferentStreams) {
  auto t = make("arithmetic", "{min_digits: 3, max_digits: 3}");
  std::set<std::string> train, eval, other_seed;
  for (uint64_t i = 0; i < 100; ++i) {
    train.insert(t->make(1, Split::kTrain, i).prompt);
    eval.insert(t->make(1, Split::kEval, i).prompt);
    other_seed.insert(t->make(2, Split::kTrain, i).prompt);
  }
  EXPECT_GT(train.size(), 95u);  // 3-digit pairs rarely repeat
  EXPECT_NE(train, eval);
  EXPECT_NE(train, other_seed);
}

TEST(ArithmeticTask, KnobsAreValidatedWithPaths) {
  std::vector<std::string> errors;
  make("arithmetic", "{min_digits: 3, max_digits: 2, ops: '+/', bogus: 1}", &errors);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "t.yaml:1: p.max_digits: must be >= p.min_digits (3), got 2");
  EXPECT_EQ(errors[1], "t.yaml:1: p.ops: may only contain + - *, got '/'");
  EXPECT_EQ(errors[2], "t.yaml:1: p.bogus: unknown key (known here: min_digits, max_digits, operands, ops, teacher_trailing_digit)");
}

// Slow reference for countdown solutions: a recursive-descent evaluator over exact rationals.
struct Frac {
  int64_t n, d;
};
Frac norm(Frac f) {
  if (f.d < 0) f = {-f.n, -f.d};
  int64_t a = f.n < 0 ? -f.n : f.n, b = f.d;
  while (b) { const int64_t t = a % b; a = b; b = t; }
  return a ? Frac{f.n / a, f.d / a} : Frac{0, 1};
}
struct Parser {
  const std::string& s;
  size_t i = 0;
  std::vector<int64_t> used;
  Frac expr() {
    Frac v = term();
    while (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      const char op = s[i++];
      const Frac r = term();
      v = norm(op == '+' ? Frac{v.n * r.d + r.n * v.d, v.d * r.d} : Frac{v.n * r.d - r.n * v.d, v.d * r.d});
    }
    return v;
  }
  Frac term() {
    Frac v = atom();
    while (i < s.size() && (s[i] == '*' || s[i] == '/')) {
      const char op = s[i++];
      const Frac r = atom();
      v = norm(op == '*' ? Frac{v.n * r.n, v.d * r.d} : Frac{v.n * r.d, v.d * r.n});
    }
    return v;
  }
  Frac atom() {
    if (s[i] == '(') {
      ++i;
      const Frac v = expr();
      ++i;  // ')'
      return v;
    }
    size_t j = i;
    while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j;
    const int64_t n = std::stoll(s.substr(i, j - i));
    used.push_back(n);
    i = j;
    return {n, 1};
  }
};

// The noisy teacher: a deterministic share of gold responses gets one stray digit after the answer;
// the others are the answer itself.
TEST(ArithmeticTask, TeacherTrailingDigitCorruptsThatShareOfGoldResponses) {
  const auto clean = make("arithmetic");
  const auto noisy = make("arithmetic", "{teacher_trailing_digit: 0.5}");
  const auto none = make("arithmetic", "{teacher_trailing_digit: 0.0}");
  int corrupted = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const auto r = noisy->make(1, Split::kTrain, static_cast<uint64_t>(i));
    const auto g = noisy->gold_response(r);
    EXPECT_EQ(g, noisy->gold_response(r)) << "deterministic";
    EXPECT_EQ(clean->gold_response(r), r.answer);
    EXPECT_EQ(none->gold_response(r), r.answer);
    if (g != r.answer) {
      ++corrupted;
      ASSERT_EQ(g.size(), r.answer.size() + 1) << g;
      EXPECT_EQ(g.substr(0, r.answer.size()), r.answer);
      EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(g.back()))) << g;
    }
  }
  EXPECT_NEAR(static_cast<double>(corrupted) / n, 0.5, 0.05);
}

// wrong_response (synthetic DPO pairs): deterministic, never the answer, the answer's last number changed.
TEST(ArithmeticTask, WrongResponseIsNeverTheAnswer) {
  const auto t = make("arithmetic", "{ops: \"+-\"}");
  for (int i = 0; i < 500; ++i) {
    const auto r = t->make(2, Split::kTrain, static_cast<uint64_t>(i));
    const auto w = t->wrong_response(r, 7);
    EXPECT_NE(w, r.answer);
    EXPECT_EQ(w, t->wrong_response(r, 7));
    const int64_t d = std::stoll(w) - std::stoll(r.answer);
    EXPECT_TRUE(d != 0 && std::abs(d) <= 9) << r.answer << " -> " << w;
  }
}

TEST(CountdownTask, GoldSolutionsUseEveryNumberOnceAndHitTheTarget) {
  auto t = make("countdown", "{numbers: 4, max_number: 12, max_target: 200}");
  for (uint64_t i = 0; i < 300; ++i) {
    const auto r = t->make(3, Split::kTrain, i);
    const std::string sol = t->gold_response(r);
    Parser p{sol};
    const Frac v = p.expr();
    EXPECT_EQ(p.i, sol.size()) << sol;
    EXPECT_EQ(v.d, 1) << sol;
    EXPECT_EQ(std::to_string(v.n), r.meta.at("target")) << sol;
    std::vector<int64_t> given;
    std::string nums = r.meta.at("numbers");  // JSON text "[3, 7, 8]", in the order shown
    std::replace(nums.begin(), nums.end(), ',', ' ');
    std::stringstream ss(nums.substr(1, nums.size() - 2));
    std::string shown;
    for (int64_t x; ss >> x;) {
      shown += (given.empty() ? "" : " ") + std::to_string(x);
      given.push_back(x);
    }
    EXPECT_EQ(r.prompt, shown + " -> " + r.meta.at("target") + ":");
    std::sort(given.begin(), given.end());
    std::sort(p.used.begin(), p.used.end());
    EXPECT_EQ(given, p.used) << sol;
    const int64_t target = std::stoll(r.answer);
    EXPECT_GE(target, 1);
    EXPECT_LE(target, 200);
  }
}

// ---- the step and judge tasks (arithmetic_steps, judge_arithmetic, prm_arithmetic) ----------------
// Their text formats are a contract: the judge prompt templates at RL time reproduce them byte for
// byte, so the fixed-seed tests pin whole strings, and the property tests re-derive every label from
// the text alone (an independent parse, not the task's helpers).

std::string unquote(const std::string& json_string) { return json_string.substr(1, json_string.size() - 2); }

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

struct ParsedStep {
  int64_t left, right, result;
  char op;
  bool locally_right() const { return result == (op == '+' ? left + right : left - right); }
};

// "17+5=22", "-4-5=-9": the step format, exactly (no spaces, optional minus on left and result).
std::optional<ParsedStep> parse_step(const std::string& line) {
  static const std::regex re(R"(^(-?\d+)([+-])(\d+)=(-?\d+)$)");
  std::smatch m;
  if (!std::regex_match(line, m, re)) return std::nullopt;
  return ParsedStep{std::stoll(m[1]), std::stoll(m[3]), std::stoll(m[4]), m[2].str()[0]};
}

// "3+14+5" -> operands {3, 14, 5}, ops "++".
void parse_expression(const std::string& expr, std::vector<int64_t>& nums, std::string& ops) {
  static const std::regex re(R"(^\d+([+-]\d+)+$)");
  ASSERT_TRUE(std::regex_match(expr, re)) << expr;
  nums.clear();
  ops.clear();
  size_t i = 0;
  while (i < expr.size()) {
    size_t j = i;
    while (j < expr.size() && isdigit(static_cast<unsigned char>(expr[j]))) ++j;
    nums.push_back(std::stoll(expr.substr(i, j - i)));
    if (j < expr.size()) ops += expr[j];
    i = j + 1;
  }
}

// Parses a step list and checks that it is the chain of `expr`: step i combines the previous shown
// result (operand 0 for the first) with operand i+1 by op i. Returns the steps.
std::vector<ParsedStep> parse_chain(const std::string& expr, const std::vector<std::string>& lines) {
  std::vector<int64_t> nums;
  std::string ops;
  parse_expression(expr, nums, ops);
  std::vector<ParsedStep> steps;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto s = parse_step(lines[i]);
    EXPECT_TRUE(s.has_value()) << "line " << i << ": '" << lines[i] << "'";
    if (!s) return steps;
    EXPECT_EQ(s->left, i == 0 ? nums[0] : steps.back().result) << lines[i];
    EXPECT_EQ(s->op, ops[i]) << lines[i];
    EXPECT_EQ(s->right, nums[i + 1]) << lines[i];
    steps.push_back(*s);
  }
  return steps;
}

int digits_of(int64_t v) { return static_cast<int>(std::to_string(v < 0 ? -v : v).size()); }

TEST(ArithmeticStepsTask, FixedSeedTextIsExact) {
  const auto t = make("arithmetic_steps");
  const auto r = t->make(11, Split::kTrain, 0);
  EXPECT_EQ(r.id, "arithmetic_steps/train/0");
  EXPECT_EQ(r.prompt, "1-66-5+1=");
  EXPECT_EQ(t->gold_response(r), "1-66=-65\n-65-5=-70\n-70+1=-69");  // negative accumulators keep their sign
  EXPECT_EQ(r.answer, "-69");
  EXPECT_EQ(r.meta, (std::map<std::string, std::string>{{"expression", "\"1-66-5+1\""}}));
  const auto r5 = t->make(11, Split::kTrain, 5);
  EXPECT_EQ(r5.prompt, "88+1+4+67=");
  EXPECT_EQ(t->gold_response(r5), "88+1=89\n89+4=93\n93+67=160");
  EXPECT_EQ(r5.answer, "160");
  EXPECT_EQ(t->verifier(), "task_arithmetic");
  // Defaults: 4 operands of 1-2 digits, + and -: 3 step lines.
  static const std::regex prompt_re(R"(^\d{1,2}([+-]\d{1,2}){3}=$)");
  for (uint64_t i = 0; i < 50; ++i) {
    const auto x = t->make(11, Split::kTrain, i);
    EXPECT_TRUE(std::regex_match(x.prompt, prompt_re)) << x.prompt;
    EXPECT_EQ(x.prompt, unquote(x.meta.at("expression")) + "=");
    EXPECT_EQ(split_lines(t->gold_response(x)).size(), 3u);
  }
}

TEST(ArithmeticStepsTask, GoldStepsParseAndEachStepIsRight) {
  const auto t = make("arithmetic_steps", "{min_digits: 1, max_digits: 3, operands: 6, ops: '+-'}");
  bool negative_seen = false;
  for (uint64_t i = 0; i < 300; ++i) {
    const auto r = t->make(5, Split::kEval, i);
    EXPECT_EQ(r.prompt, t->make(5, Split::kEval, i).prompt);
    const std::string gold = t->gold_response(r);
    EXPECT_EQ(gold, t->gold_response(t->make(5, Split::kEval, i)));
    const std::string expr = unquote(r.meta.at("expression"));
    const auto steps = parse_chain(expr, split_lines(gold));
    ASSERT_EQ(steps.size(), 5u) << gold;
    for (const auto& s : steps) {
      EXPECT_TRUE(s.locally_right()) << gold;
      negative_seen |= s.left < 0 || s.result < 0;
    }
    EXPECT_EQ(r.answer, std::to_string(steps.back().result));
    EXPECT_EQ(r.answer, std::to_string(eval_reference(expr)));  // left to right = precedence for + -
    // task_arithmetic reads the last integer of the response: the final value, sign included.
    EXPECT_EQ(rewards::extract_integer_answer(gold), r.answer) << gold;
  }
  EXPECT_TRUE(negative_seen) << "intermediate results may be negative";
}

// A wrong response is the gold chain with one step before the last off by a non-zero amount and
// every later step recomputed from the wrong value: exactly one locally wrong step, the chain intact,
// the final value off by the same amount.
TEST(ArithmeticStepsTask, WrongResponseHasAWrongMiddleStepThatPropagates) {
  const auto t = make("arithmetic_steps", "{operands: 5}");
  std::set<size_t> wrong_positions;
  int differs_by_salt = 0;
  for (uint64_t i = 0; i < 300; ++i) {
    const auto r = t->make(3, Split::kTrain, i);
    const std::string w = t->wrong_response(r, 7);
    EXPECT_EQ(w, t->wrong_response(r, 7)) << "deterministic in salt";
    differs_by_salt += w != t->wrong_response(r, 8);
    const auto steps = parse_chain(unquote(r.meta.at("expression")), split_lines(w));
    ASSERT_EQ(steps.size(), 4u) << w;
    std::vector<size_t> wrong;
    for (size_t k = 0; k < steps.size(); ++k)
      if (!steps[k].locally_right()) wrong.push_back(k);
    ASSERT_EQ(wrong.size(), 1u) << w;
    EXPECT_LT(wrong[0], steps.size() - 1) << "a middle step, so the error propagates: " << w;
    wrong_positions.insert(wrong[0]);
    const int64_t off = steps.back().result - std::stoll(r.answer);
    EXPECT_TRUE(off != 0 && std::abs(off) <= 9) << w;
    const auto& bad = steps[wrong[0]];
    EXPECT_EQ(bad.result - (bad.op == '+' ? bad.left + bad.right : bad.left - bad.right), off) << w;
    EXPECT_NE(rewards::extract_integer_answer(w), r.answer) << w;
  }
  EXPECT_EQ(wrong_positions, (std::set<size_t>{0, 1, 2}));
  EXPECT_GT(differs_by_salt, 200);
}

TEST(ArithmeticStepsTask, KnobsAreValidatedWithPaths) {
  std::vector<std::string> errors;
  make("arithmetic_steps", "{operands: 2, min_digits: 3, max_digits: 2, ops: '+*'}", &errors);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "t.yaml:1: p.operands: must be >= 3, got 2");
  EXPECT_EQ(errors[1], "t.yaml:1: p.max_digits: must be >= p.min_digits (3), got 2");
  EXPECT_EQ(errors[2], "t.yaml:1: p.ops: may only contain + -, got '*'");
}

// judge_arithmetic: "<expr>=<shown>\nQ: <question>?\nA:" -> "yes" / "no".
const std::map<std::string, std::string> kJudgeQuestions = {
    {"correct", "is the answer correct"},
    {"close", "is the answer within 9 of the true value"},
    {"digits", "does the answer have the right number of digits"}};

struct JudgePrompt {
  std::string expr, shown, question;
};
std::optional<JudgePrompt> parse_judge_prompt(const std::string& prompt) {
  static const std::regex re(R"(^(\d+(?:[-+*]\d+)+)=(-?\d+)\nQ: ([a-z0-9 ]+)\?\nA:$)");
  std::smatch m;
  if (!std::regex_match(prompt, m, re)) return std::nullopt;
  return JudgePrompt{m[1], m[2], m[3]};
}

TEST(JudgeArithmeticTask, FixedSeedTextIsExact) {
  const auto t = make("judge_arithmetic");
  const auto r = t->make(11, Split::kTrain, 0);
  EXPECT_EQ(r.id, "judge_arithmetic/train/0");
  EXPECT_EQ(r.prompt, "1+66=67\nQ: is the answer correct?\nA:");
  EXPECT_EQ(t->gold_response(r), "yes");
  EXPECT_EQ(r.answer, "yes");
  EXPECT_EQ(r.meta, (std::map<std::string, std::string>{
                        {"expression", "\"1+66\""}, {"shown", "\"67\""}, {"criterion", "\"correct\""}, {"truth", "true"}}));
  const auto r2 = t->make(11, Split::kTrain, 2);  // 10 with a stray digit appended
  EXPECT_EQ(r2.prompt, "3+7=101\nQ: is the answer within 9 of the true value?\nA:");
  EXPECT_EQ(t->gold_response(r2), "no");
  EXPECT_EQ(r2.meta, (std::map<std::string, std::string>{
                         {"expression", "\"3+7\""}, {"shown", "\"101\""}, {"criterion", "\"close\""}, {"truth", "false"}}));
  const auto r3 = t->make(11, Split::kTrain, 3);
  EXPECT_EQ(r3.prompt, "28+3=31\nQ: does the answer have the right number of digits?\nA:");
  EXPECT_EQ(t->gold_response(r3), "yes");
  EXPECT_EQ(t->verifier(), "match_exact");
  for (uint64_t i = 0; i < 200; ++i) {
    const auto x = t->make(11, Split::kTrain, i);
    const auto p = parse_judge_prompt(x.prompt);
    ASSERT_TRUE(p.has_value()) << x.prompt;
    EXPECT_EQ(p->expr, unquote(x.meta.at("expression")));
    EXPECT_EQ(p->shown, unquote(x.meta.at("shown")));
    EXPECT_EQ(p->question, kJudgeQuestions.at(unquote(x.meta.at("criterion"))));
    EXPECT_TRUE(x.answer == "yes" || x.answer == "no") << x.answer;
    EXPECT_EQ(t->gold_response(x), x.answer);
    EXPECT_EQ(t->wrong_response(x, 1), x.answer == "yes" ? "no" : "yes");
    EXPECT_TRUE(x.meta.at("truth") == "true" || x.meta.at("truth") == "false");
    // match_exact (region auto) reads the response as the metadata answer.
    EXPECT_EQ(rewards::answer_region(t->gold_response(x), rewards::AnswerRegion::kAuto), x.answer);
  }
}

// Same knobs, same problem: record i's expression is the arithmetic task's problem i, and the truth
// is re-derived here from the shown answer and arithmetic's own answer.
TEST(JudgeArithmeticTask, ProblemsAreTheArithmeticTasksAndTruthFollowsTheCriterion) {
  const std::string knobs = "{min_digits: 1, max_digits: 3, operands: 3, ops: '+-*'}";
  const auto arith = make("arithmetic", knobs);
  const auto judge = make("judge_arithmetic", knobs.substr(0, knobs.size() - 1) + ", label_noise: 0}");
  int wrong = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    const auto a = arith->make(9, Split::kTrain, i);
    const auto j = judge->make(9, Split::kTrain, i);
    EXPECT_EQ(j.meta.at("expression"), a.meta.at("expression"));
    const int64_t value = std::stoll(a.answer), shown = std::stoll(unquote(j.meta.at("shown")));
    const std::string criterion = unquote(j.meta.at("criterion"));
    const bool truth = criterion == "correct" ? shown == value
                       : criterion == "close" ? std::abs(shown - value) <= 9
                                              : digits_of(shown) == digits_of(value);
    EXPECT_EQ(j.meta.at("truth"), truth ? "true" : "false") << j.prompt;
    EXPECT_EQ(j.answer, truth ? "yes" : "no") << "label_noise 0";
    if (shown == value) continue;
    ++wrong;
    // One of the three corruptions: off by 1..9 (not below zero unless the value is), a stray digit
    // appended (0 becomes one non-zero digit), or another number with the value's digit count.
    const std::string sv = std::to_string(value), ss = std::to_string(shown);
    const bool off_by_k = std::abs(shown - value) <= 9 && (value < 0 || shown >= 0);
    const bool stray = value == 0 ? (shown >= 1 && shown <= 9)
                                  : ss.size() == sv.size() + 1 && ss.substr(0, sv.size()) == sv;
    const bool same_digits = digits_of(shown) == digits_of(value) && (shown < 0) == (value < 0 && shown != 0);
    EXPECT_TRUE(off_by_k || stray || same_digits) << value << " shown as " << shown;
  }
  EXPECT_NEAR(wrong / 2000.0, 0.5, 0.04);
}

TEST(JudgeArithmeticTask, LabelsEqualTruthExceptANoiseShare) {
  const auto noisy = make("judge_arithmetic");  // label_noise 0.1
  const auto clean = make("judge_arithmetic", "{label_noise: 0}");
  const int n = 2000;
  int flipped = 0, yes = 0;
  for (int i = 0; i < n; ++i) {
    const auto r = noisy->make(4, Split::kTrain, static_cast<uint64_t>(i));
    const auto c = clean->make(4, Split::kTrain, static_cast<uint64_t>(i));
    EXPECT_EQ(r.prompt, c.prompt) << "label_noise changes labels only";
    EXPECT_EQ(r.meta.at("truth"), c.meta.at("truth"));
    EXPECT_EQ(c.answer, c.meta.at("truth") == "true" ? "yes" : "no");
    flipped += (r.answer == "yes") != (r.meta.at("truth") == "true");
    yes += r.answer == "yes";
  }
  EXPECT_NEAR(static_cast<double>(flipped) / n, 0.1, 0.03);
  EXPECT_GT(yes, n / 4);  // both labels are common
  EXPECT_LT(yes, 3 * n / 4);
}

TEST(JudgeArithmeticTask, ContentFreeAnswersAreLabelledNo) {
  // Master-RM's adversarial negatives: a share of the answers say nothing, and no criterion holds.
  const auto plain = make("judge_arithmetic", "{label_noise: 0}");
  const auto cf = make("judge_arithmetic", "{label_noise: 0, content_free_share: 0.3}");
  const int n = 2000;
  int free = 0;
  for (int i = 0; i < n; ++i) {
    const auto a = plain->make(3, Split::kTrain, static_cast<uint64_t>(i));
    const auto b = cf->make(3, Split::kTrain, static_cast<uint64_t>(i));
    EXPECT_EQ(a.meta.at("expression"), b.meta.at("expression"));
    if (a.prompt == b.prompt) continue;
    ++free;
    EXPECT_EQ(b.answer, "no") << b.prompt;
    EXPECT_EQ(b.meta.at("truth"), "false");
    const std::string shown = nlohmann::json::parse(b.meta.at("shown")).get<std::string>();
    // From the list, a word of letters, or blanks: never a digit (nothing a criterion could hold for).
    EXPECT_EQ(shown.find_first_of("0123456789"), std::string::npos) << shown;
    EXPECT_EQ(b.prompt.rfind(unquote(b.meta.at("expression")) + "=" + shown + "\nQ: ", 0), 0u) << b.prompt;
  }
  EXPECT_NEAR(static_cast<double>(free) / n, 0.3, 0.04);  // (a content-free draw equal to the plain text is rare)
  const auto prm = make("prm_arithmetic", "{label_noise: 0, content_free_share: 1}");
  for (int i = 0; i < 50; ++i) EXPECT_EQ(prm->make(3, Split::kTrain, static_cast<uint64_t>(i)).answer, "no");
}

TEST(JudgeArithmeticTask, CriteriaAreDrawnUniformlyFromTheKnob) {
  const int n = 3000;
  std::map<std::string, int> all, two;
  const auto t = make("judge_arithmetic");
  const auto t2 = make("judge_arithmetic", "{criteria: [close, digits]}");
  for (int i = 0; i < n; ++i) {
    ++all[unquote(t->make(2, Split::kTrain, static_cast<uint64_t>(i)).meta.at("criterion"))];
    ++two[unquote(t2->make(2, Split::kTrain, static_cast<uint64_t>(i)).meta.at("criterion"))];
  }
  ASSERT_EQ(all.size(), 3u);
  for (const auto& [c, count] : all) EXPECT_NEAR(static_cast<double>(count) / n, 1.0 / 3, 0.04) << c;
  ASSERT_EQ(two.size(), 2u);
  for (const auto& [c, count] : two) {
    EXPECT_TRUE(c == "close" || c == "digits") << c;
    EXPECT_NEAR(static_cast<double>(count) / n, 0.5, 0.04) << c;
  }
}

TEST(JudgeArithmeticTask, KnobsAreValidatedWithPaths) {
  std::vector<std::string> errors;
  make("judge_arithmetic", "{operands: 1, wrong_share: 2, criteria: [correct, vibes], label_noise: 0.6}", &errors);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "t.yaml:1: p.operands: must be >= 2, got 1");
  EXPECT_EQ(errors[1], "t.yaml:1: p.wrong_share: must be <= 1.0, got 2.0");
  EXPECT_EQ(errors[2], "t.yaml:1: p.criteria: unknown criterion 'vibes' (known: correct, close, digits)");
  EXPECT_EQ(errors[3], "t.yaml:1: p.label_noise: must be <= 0.5, got 0.6");
  make("judge_arithmetic", "{criteria: [close, close], ops: '+/'}", &errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "t.yaml:1: p.ops: may only contain + - *, got '/'");
  EXPECT_EQ(errors[1], "t.yaml:1: p.criteria: lists a criterion twice");
}

// prm_arithmetic: "<expr>=<step 1>\n...<step k>\nQ: is the last step correct?\nA:" -> "yes" / "no".
TEST(PrmArithmeticTask, FixedSeedTextIsExact) {
  const auto t = make("prm_arithmetic");
  const auto r = t->make(11, Split::kTrain, 0);
  EXPECT_EQ(r.id, "prm_arithmetic/train/0");
  EXPECT_EQ(r.prompt, "1-66-5+1=1-66=-65\nQ: is the last step correct?\nA:");
  EXPECT_EQ(t->gold_response(r), "yes");
  EXPECT_EQ(r.answer, "yes");
  EXPECT_EQ(r.meta, (std::map<std::string, std::string>{{"expression", "\"1-66-5+1\""}, {"truth", "true"}, {"step", "1"}}));
  // 19-9=1 is wrong; 1-34=-33 carries it forward but is locally right: yes.
  const auto r1 = t->make(11, Split::kTrain, 1);
  EXPECT_EQ(r1.prompt, "11+8-9-34=11+8=19\n19-9=1\n1-34=-33\nQ: is the last step correct?\nA:");
  EXPECT_EQ(t->gold_response(r1), "yes");
  EXPECT_EQ(r1.meta, (std::map<std::string, std::string>{{"expression", "\"11+8-9-34\""}, {"truth", "true"}, {"step", "3"}}));
  // The last shown step is wrong: no.
  const auto r2 = t->make(11, Split::kTrain, 2);
  EXPECT_EQ(r2.prompt, "3+7-88-82=3+7=10\n10-88=-78\n-78-82=-163\nQ: is the last step correct?\nA:");
  EXPECT_EQ(t->gold_response(r2), "no");
  EXPECT_EQ(r2.meta.at("truth"), "false");
  EXPECT_EQ(t->verifier(), "match_exact");
  // The problem part is arithmetic_steps' prompt for the same knobs, seed and index.
  const auto steps_task = make("arithmetic_steps");
  for (uint64_t i = 0; i < 100; ++i) {
    const auto x = t->make(11, Split::kTrain, i);
    const auto s = steps_task->make(11, Split::kTrain, i);
    EXPECT_EQ(x.prompt.substr(0, s.prompt.size()), s.prompt);
    EXPECT_EQ(x.meta.at("expression"), s.meta.at("expression"));
    EXPECT_EQ(rewards::answer_region(t->gold_response(x), rewards::AnswerRegion::kAuto), x.answer);
    EXPECT_EQ(t->wrong_response(x, 3), x.answer == "yes" ? "no" : "yes");
  }
}

// The labels are re-derived from the prompt text alone: the last shown step is "correct" when its own
// arithmetic is right given its shown left operand (local correctness). A step after an earlier error
// that carries the wrong value forward is labelled yes here; Math-Shepherd-style hard labels would
// call it wrong.
TEST(PrmArithmeticTask, LastStepLabelsAreLocalCorrectnessOfThePromptsLastStep) {
  const auto t = make("prm_arithmetic", "{operands: 5}");
  static const std::regex re(R"(^(\d+(?:[+-]\d+)+)=((?:[-+=0-9]+\n)+)Q: is the last step correct\?\nA:$)");
  const int n = 2000;
  int flipped = 0, with_error = 0, last_wrong = 0, carried = 0;
  std::set<size_t> shown_counts;
  for (int i = 0; i < n; ++i) {
    const auto r = t->make(6, Split::kTrain, static_cast<uint64_t>(i));
    EXPECT_EQ(r.prompt, t->make(6, Split::kTrain, static_cast<uint64_t>(i)).prompt);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(r.prompt, m, re)) << r.prompt;
    EXPECT_EQ(m[1].str(), unquote(r.meta.at("expression")));
    const auto steps = parse_chain(m[1], split_lines(m[2]));
    ASSERT_EQ(std::to_string(steps.size()), r.meta.at("step")) << r.prompt;
    ASSERT_GE(steps.size(), 1u);
    ASSERT_LE(steps.size(), 4u);
    shown_counts.insert(steps.size());
    int wrong_steps = 0;
    for (const auto& s : steps) wrong_steps += !s.locally_right();
    EXPECT_LE(wrong_steps, 1) << r.prompt;
    const bool truth = steps.back().locally_right();
    EXPECT_EQ(r.meta.at("truth"), truth ? "true" : "false") << r.prompt;
    flipped += (r.answer == "yes") != truth;
    with_error += wrong_steps;
    last_wrong += !truth;
    carried += wrong_steps == 1 && truth;  // an earlier wrong step, carried forward: labelled yes
  }
  EXPECT_NEAR(static_cast<double>(flipped) / n, 0.1, 0.03);
  EXPECT_EQ(shown_counts, (std::set<size_t>{1, 2, 3, 4}));
  // wrong_share 0.5 of the records have one wrong step; of those, the last shown step (always when
  // one step is shown, else half the time) or an earlier one: 0.5 * (1/4 + 3/4 * 1/2) = 0.3125 last.
  EXPECT_NEAR(static_cast<double>(with_error) / n, 0.5, 0.04);
  EXPECT_NEAR(static_cast<double>(last_wrong) / n, 0.3125, 0.04);
  EXPECT_NEAR(static_cast<double>(carried) / n, 0.1875, 0.04);
}

TEST(PrmArithmeticTask, KnobsAreValidatedWithPaths) {
  std::vector<std::string> errors;
  make("prm_arithmetic", "{operands: 7, ops: '*', wrong_share: -0.1, label_noise: 0.51}", &errors);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "t.yaml:1: p.operands: must be <= 6, got 7");
  EXPECT_EQ(errors[1], "t.yaml:1: p.ops: may only contain + -, got '*'");
  EXPECT_EQ(errors[2], "t.yaml:1: p.wrong_share: must be >= 0.0, got -0.1");
  EXPECT_EQ(errors[3], "t.yaml:1: p.label_noise: must be <= 0.5, got 0.51");
}

// pairwise_arithmetic: "a+b=\nA: x\nB: y\nQ: is A better than B?\nA:" -> yes iff A is strictly
// closer to a + b (a content-free A never, a content-free B against a number always).
TEST(PairwiseArithmeticTask, LabelsFollowTheCloserAnswer) {
  const auto t = make("pairwise_arithmetic", "{label_noise: 0, content_free_share: 0.3}");
  // (answers may be blanks or newlines: the parse keys on the fixed markers)
  const std::regex re(R"(^(\d+)\+(\d+)=\nA: ([\s\S]*)\nB: ([\s\S]*)\nQ: is A better than B\?\nA:$)");
  int yes = 0, free = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto r = t->make(5, Split::kTrain, static_cast<uint64_t>(i));
    std::smatch m;
    ASSERT_TRUE(std::regex_match(r.prompt, m, re)) << r.prompt;
    const long v = std::stol(m[1]) + std::stol(m[2]);
    const auto num = [](const std::string& x) { return !x.empty() && x.find_first_not_of("0123456789") == std::string::npos; };
    const std::string a = m[3], b = m[4];
    EXPECT_EQ(nlohmann::json::parse(r.meta.at("first")).get<std::string>(), a);
    EXPECT_EQ(nlohmann::json::parse(r.meta.at("second")).get<std::string>(), b);
    bool truth;
    if (!num(a)) truth = false;
    else if (!num(b)) truth = true;
    else truth = std::labs(std::stol(a) - v) < std::labs(std::stol(b) - v);
    free += !num(a) || !num(b);
    EXPECT_EQ(r.answer, truth ? "yes" : "no") << r.prompt;
    EXPECT_EQ(t->gold_response(r), r.answer);
    yes += truth;
  }
  EXPECT_GT(yes, 200);
  EXPECT_GT(free, 300);
}

TEST(TaskRegistry, ListsBuiltinsAndRejectsUnknownNames) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"arithmetic", "arithmetic_steps", "countdown", "judge_arithmetic",
                                                     "pairwise_arithmetic", "prm_arithmetic"}));
  try {
    reg.get("sudoku");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown task 'sudoku' (known: arithmetic, arithmetic_steps, countdown, judge_arithmetic, pairwise_arithmetic, "
            "prm_arithmetic)");
  }
}

}  // namespace
}  // namespace keel::data
