// Randomised checks of the verifiers against slow, obvious references kept here:
//  - Countdown: random expression trees over random numbers, evaluated by a separate fraction
//    evaluator on the tree, rendered as text with random spacing / operator spellings;
//  - math answers: one random rational written in many equivalent notations;
//  - fuzz: random token soup (braces, tags, numbers, invalid bytes) through every verifier never
//    crashes, never throws, always returns a finite value.
#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "../reward_test_util.h"
#include "rewards/scorer.h"
#include "rewards/verifiers/countdown.h"
#include "rewards/verifiers/math_answer.h"

namespace keel::rewards {
namespace {

using nlohmann::json;

// ---- Countdown ------------------------------------------------------------------------------------

/// A plain fraction with int64 parts; the numbers here stay far from overflow.
struct Frac {
  long long n = 0, d = 1;
  static Frac of(long long n, long long d) {
    if (d < 0) { n = -n; d = -d; }
    const long long g = std::gcd(n < 0 ? -n : n, d);
    return g == 0 ? Frac{0, 1} : Frac{n / g, d / g};
  }
};

struct Tree {
  // leaf when op == 0
  char op = 0;
  long long value = 0;
  std::unique_ptr<Tree> l, r;
};

/// Slow reference evaluation; false on division by zero.
bool eval_tree(const Tree& t, Frac& out) {
  if (!t.op) {
    out = Frac{t.value, 1};
    return true;
  }
  Frac a, b;
  if (!eval_tree(*t.l, a) || !eval_tree(*t.r, b)) return false;
  switch (t.op) {
    case '+': out = Frac::of(a.n * b.d + b.n * a.d, a.d * b.d); return true;
    case '-': out = Frac::of(a.n * b.d - b.n * a.d, a.d * b.d); return true;
    case '*': out = Frac::of(a.n * b.n, a.d * b.d); return true;
    default:
      if (b.n == 0) return false;
      out = Frac::of(a.n * b.d, a.d * b.n);
      return true;
  }
}

std::unique_ptr<Tree> random_tree(std::vector<long long> leaves, std::mt19937& rng) {
  auto t = std::make_unique<Tree>();
  if (leaves.size() == 1) {
    t->value = leaves[0];
    return t;
  }
  const size_t split = std::uniform_int_distribution<size_t>(1, leaves.size() - 1)(rng);
  t->op = "+-*/"[std::uniform_int_distribution<int>(0, 3)(rng)];
  t->l = random_tree(std::vector<long long>(leaves.begin(), leaves.begin() + static_cast<long>(split)), rng);
  t->r = random_tree(std::vector<long long>(leaves.begin() + static_cast<long>(split), leaves.end()), rng);
  return t;
}

/// Fully parenthesised text with random spaces and operator spellings.
std::string render(const Tree& t, std::mt19937& rng) {
  auto sp = [&] { return std::string(std::uniform_int_distribution<int>(0, 2)(rng), ' '); };
  if (!t.op) return std::to_string(t.value);
  std::string op(1, t.op);
  const int style = std::uniform_int_distribution<int>(0, 3)(rng);
  if (t.op == '*' && style == 1) op = "\xC3\x97";
  if (t.op == '*' && style == 2) op = "\\times";
  if (t.op == '/' && style == 1) op = "\xC3\xB7";
  return "(" + sp() + render(*t.l, rng) + sp() + op + sp() + render(*t.r, rng) + sp() + ")";
}

TEST(CountdownProperty, RandomTreesAgreeWithTheReferenceEvaluator) {
  int judged = 0;
  for (int seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    const int k = std::uniform_int_distribution<int>(2, 6)(rng);
    std::vector<long long> numbers;
    for (int i = 0; i < k; ++i) numbers.push_back(std::uniform_int_distribution<int>(1, 100)(rng));
    const auto tree = random_tree(numbers, rng);
    Frac ref;
    const bool ok = eval_tree(*tree, ref);
    const std::string text = render(*tree, rng);
    std::vector<int64_t> lits;
    const auto got = eval_countdown_expression(text, &lits);
    ASSERT_EQ(got.has_value(), ok) << text;
    if (!ok) continue;
    EXPECT_EQ(static_cast<long long>(got->num()), ref.n) << text;
    EXPECT_EQ(static_cast<long long>(got->den()), ref.d) << text;
    EXPECT_EQ(std::vector<int64_t>(numbers.begin(), numbers.end()), lits);
    if (ref.d != 1) continue;
    // The task gives the numbers in another order; the verdict must be "correct".
    std::vector<int64_t> shuffled(numbers.begin(), numbers.end());
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const std::string resp = "<think>...</think><answer>" + text + "</answer>";
    EXPECT_EQ(check_countdown(resp, shuffled, ref.n, true).verdict, CountdownVerdict::kCorrect) << resp;
    EXPECT_EQ(check_countdown(resp, shuffled, ref.n + 1, true).verdict, CountdownVerdict::kWrongValue) << resp;
    // A number not given (101 is outside the range drawn) -> bad numbers.
    std::vector<int64_t> other = shuffled;
    other[0] = 101;
    EXPECT_EQ(check_countdown(resp, other, ref.n, true).verdict, CountdownVerdict::kBadNumbers) << resp;
    // One extra given number: fine when at most once, not when every number must be used.
    std::vector<int64_t> extra = shuffled;
    extra.push_back(7);
    EXPECT_EQ(check_countdown(resp, extra, ref.n, false).verdict, CountdownVerdict::kCorrect) << resp;
    EXPECT_EQ(check_countdown(resp, extra, ref.n, true).verdict, CountdownVerdict::kBadNumbers) << resp;
    ++judged;
  }
  EXPECT_GE(judged, 50);
}

// ---- math answers -----------------------------------------------------------------------------------

std::string with_thousands(long long v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return (v < 0 ? "-" : "") + s;
}

/// Every notation of p/q (reduced, q > 0) this module claims to understand.
std::vector<std::string> notations(long long p, long long q) {
  std::vector<std::string> out;
  const std::string sign = p < 0 ? "-" : "";
  const long long a = p < 0 ? -p : p;
  out.push_back("\\frac{" + std::to_string(p) + "}{" + std::to_string(q) + "}");
  out.push_back(sign + "\\dfrac{" + std::to_string(a) + "}{" + std::to_string(q) + "}");
  out.push_back(std::to_string(p) + "/" + std::to_string(q));
  out.push_back("$" + std::to_string(2 * p) + "/" + std::to_string(2 * q) + "$");  // unreduced
  long long q2 = q, twos = 0, fives = 0;
  while (q2 % 2 == 0) { q2 /= 2; ++twos; }
  while (q2 % 5 == 0) { q2 /= 5; ++fives; }
  if (q2 == 1) {  // terminating decimal
    const long long digits = std::max(twos, fives);
    long long scale = 1;
    for (int i = 0; i < digits; ++i) scale *= 10;
    const long long scaled = a * (scale / q);
    std::string frac = digits ? std::to_string(scaled % scale) : "";
    while (static_cast<long long>(frac.size()) < digits) frac = "0" + frac;
    const std::string whole = with_thousands(scaled / scale);
    out.push_back(sign + whole + (digits ? "." + frac : ""));
    out.push_back(sign + whole + "." + frac + "00");  // trailing zeros
    if (q == 1) out.push_back("\\boxed{" + sign + std::to_string(a) + "}");
  }
  return out;
}

TEST(MathAnswerProperty, EquivalentNotationsAgreeAndNeighboursDiffer) {
  const long long dens[] = {1, 2, 3, 4, 5, 7, 8, 10, 20, 25, 40};
  for (int seed = 0; seed < 100; ++seed) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    const long long q = dens[std::uniform_int_distribution<int>(0, 10)(rng)];
    long long p = std::uniform_int_distribution<long long>(-200000, 200000)(rng);
    const long long g = std::gcd(p < 0 ? -p : p, q);
    if (g == 0) continue;
    p /= g;
    const long long qq = q / g;
    const auto forms = notations(p, qq);
    const auto wrong = notations(p + 1, qq);
    for (const auto& a : forms) {
      for (const auto& b : forms) EXPECT_TRUE(math_answers_equal(a, b)) << a << " vs " << b << " seed " << seed;
      for (const auto& w : wrong) EXPECT_FALSE(math_answers_equal(a, w)) << a << " vs " << w << " seed " << seed;
    }
    // Through extraction from a response.
    EXPECT_TRUE(math_answers_equal(*extract_math_answer("so the answer is \\boxed{" + forms[0] + "}."), forms[2]));
  }
}

// ---- fuzz -------------------------------------------------------------------------------------------

TEST(VerifierFuzz, RandomTokenSoupNeverCrashesOrThrows) {
  const std::vector<std::string> tokens = {
      "\\boxed{", "\\boxed", "{", "}", "\\frac", "\\dfrac{", "<answer>", "</answer>", "<think>", "</think>", "(", ")",
      "[", "]", "1", "23", "456", "7,890", "-", "+", "*", "/", ".", ",", "%", "\\%", "$", "=", " ", "\n",
      "the answer is ", "Answer: ", "####", "x", "B", "(C)", "\xE2\x88\x92", "\xC3\x97", "\\text{", "\\left(", "e",
      "0", "00000000000000000000000000000000000000001", "\\,", "{,}", "^\\circ", "\xF0\x9F\x98\x80"};
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  const json meta = {{"answer", "12"}, {"numbers", {1, 23, 456}}, {"target", 24}, {"choices", {"a", "b", "c"}}};
  std::vector<std::string> responses;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const int n = std::uniform_int_distribution<int>(1, 60)(rng);
    for (int k = 0; k < n; ++k) s += tokens[std::uniform_int_distribution<size_t>(0, tokens.size() - 1)(rng)];
    responses.push_back(s);
  }
  for (const auto& name : reg.names()) {
    const std::string params = name == "format_regex" ? "{pattern: '[0-9]+'}" : "{}";
    json m = meta;
    if (name == "match_choice") m["answer"] = "B";
    const std::vector<json> metas(responses.size(), m);
    auto s = testing::build_scheme(name, params);
    const RewardOutput out = s->score(testing::make_input(responses, metas));
    EXPECT_TRUE(torch::isfinite(out.rewards).all().item<bool>()) << name;
    EXPECT_EQ(out.metrics.at("scorer/errors"), 0.0) << name;
    EXPECT_EQ(out.metrics.at("scorer/timeouts"), 0.0) << name;
  }
}

}  // namespace
}  // namespace keel::rewards
