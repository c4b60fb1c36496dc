// Task "arithmetic": multi-digit integer arithmetic, "a+b*c=" -> "<value>".
// Knobs: operand count, digit range, operators. Standard precedence (* before + and -).
#include <functional>
#include <stdexcept>

#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/data/tasks/arithmetic_draw.h"

namespace keel::data {

void read_arithmetic_knobs(config::Reader& r, ArithmeticKnobs& k, int min_operands, const std::string& allowed_ops,
                           const std::string& operands_doc) {
  std::string spaced;  // "+ - *"
  for (char c : allowed_ops) spaced += (spaced.empty() ? "" : " ") + std::string(1, c);
  r.field("min_digits", k.min_digits, "fewest digits of an operand").ge(1).le(9);
  r.field("max_digits", k.max_digits, "most digits of an operand").ge(1).le(9);
  r.field("operands", k.operands, operands_doc).ge(min_operands).le(6);
  r.field("ops", k.ops, "operators to draw from, any of " + spaced).nonempty();
  if (k.max_digits < k.min_digits)
    r.error("max_digits", fmt::format("must be >= {} ({}), got {}", r.path_of("min_digits"), k.min_digits, k.max_digits));
  for (char c : k.ops)
    if (allowed_ops.find(c) == std::string::npos) {
      r.error("ops", fmt::format("may only contain {}, got '{}'", spaced, c));
      break;
    }
}

ArithmeticProblem draw_arithmetic(SplitMix64& rng, const ArithmeticKnobs& k) {
  const int operands = k.operands;
  const std::string& ops = k.ops;
  ArithmeticProblem p;
  for (int i = 0; i < operands; ++i) {
    const int digits = static_cast<int>(rng.uniform(k.min_digits, k.max_digits));
    int64_t lo = 1;
    for (int d = 1; d < digits; ++d) lo *= 10;
    p.nums.push_back(rng.uniform(digits == 1 ? 0 : lo, lo * 10 - 1));
    if (i + 1 < operands) p.ops += ops[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(ops.size()) - 1))];
  }
  p.expression = std::to_string(p.nums[0]);
  for (size_t i = 0; i < p.ops.size(); ++i) p.expression += p.ops[i] + std::to_string(p.nums[i + 1]);
  p.value = evaluate_arithmetic(p.nums, p.ops);
  return p;
}

int64_t evaluate_arithmetic(const std::vector<int64_t>& nums, const std::string& ops) {
  std::vector<int64_t> terms{nums[0]};
  std::vector<char> signs{'+'};
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i] == '*') {
      terms.back() *= nums[i + 1];
    } else {
      terms.push_back(nums[i + 1]);
      signs.push_back(ops[i]);
    }
  }
  int64_t v = 0;
  for (size_t i = 0; i < terms.size(); ++i) v += signs[i] == '-' ? -terms[i] : terms[i];
  return v;
}

namespace {

struct ArithmeticOptions {
  ArithmeticKnobs problem;
  double teacher_trailing_digit = 0.0;
};

class ArithmeticTask : public Task {
 public:
  explicit ArithmeticTask(ArithmeticOptions o) : o_(std::move(o)) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    const ArithmeticProblem p = draw_arithmetic(rng, o_.problem);
    PromptRecord r;
    r.id = fmt::format("arithmetic/{}/{}", split == Split::kTrain ? "train" : "eval", index);
    r.prompt = p.expression + "=";
    r.answer = std::to_string(p.value);
    r.meta["expression"] = "\"" + p.expression + "\"";  // JSON text (record.h); digits and + - * only
    return r;
  }

  /// The answer — or, with teacher_trailing_digit p, for a deterministic share p of the problems,
  /// the answer followed by a stray digit: a noisy teacher whose demonstrations mix a wrong format
  /// into SFT data (the verifier still accepts only the true value). The quickstart's SFT stage
  /// uses it so that RL has something to fix that transfers across problems.
  std::string gold_response(const PromptRecord& r) const override {
    if (o_.teacher_trailing_digit <= 0) return r.answer;
    SplitMix64 rng(std::hash<std::string>{}(r.prompt) ^ 0x7EAC4E5ull);
    const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
    if (u < o_.teacher_trailing_digit) return r.answer + std::to_string(rng.uniform(0, 9));
    return r.answer;
  }
  std::string verifier() const override { return "task_arithmetic"; }

 private:
  ArithmeticOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_arithmetic_task(config::Reader& r) {
  ArithmeticOptions o;
  read_arithmetic_knobs(r, o.problem);
  r.field("teacher_trailing_digit", o.teacher_trailing_digit,
          "share of gold (SFT) responses with a stray digit appended: a noisy teacher (the verifier is unchanged)")
      .ge(0).le(1);
  return std::make_unique<ArithmeticTask>(o);
}

}  // namespace keel::data
