// Built-in tasks: deterministic, split-separated, with correct gold answers and validated knobs.
#include "trainer/data/task.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "base/reader.h"

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

TEST(TaskRegistry, ListsBuiltinsAndRejectsUnknownNames) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"arithmetic", "countdown"}));
  try {
    reg.get("sudoku");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown task 'sudoku' (known: arithmetic, countdown)");
  }
}

}  // namespace
}  // namespace keel::data
