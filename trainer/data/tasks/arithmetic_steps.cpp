// Task "arithmetic_steps": "3+14+5+6=" -> "3+14=17\n17+5=22\n22+6=28", one line per left-to-right
// step (intermediate results may be negative: "-4+5=1"). The verifier (task_arithmetic) reads the
// last integer, so only the final value is scored; the steps are what the judges' data
// (prm_arithmetic) and the preference pairs (wrong_response: one wrong step that propagates) use.
#include "trainer/data/tasks/arithmetic_steps.h"

#include <cctype>
#include <functional>
#include <stdexcept>

#include "base/reader.h"

namespace keel::data {

void read_steps_options(config::Reader& r, StepsOptions& o) {
  read_arithmetic_knobs(r, o, /*min_operands=*/3, "+-", "numbers in the expression (steps = operands - 1)");
}

std::string StepsProblem::expression() const {
  std::string e = std::to_string(operands[0]);
  for (size_t i = 0; i < ops.size(); ++i) e += ops[i] + std::to_string(operands[i + 1]);
  return e;
}

StepsProblem draw_steps_problem(SplitMix64& rng, const StepsOptions& o) {
  // The arithmetic task's draw; the steps evaluate it left to right (+ and - only).
  ArithmeticProblem a = draw_arithmetic(rng, o);
  StepsProblem p;
  p.operands = std::move(a.nums);
  p.ops = std::move(a.ops);
  return p;
}

StepsProblem parse_steps_expression(const std::string& expr) {
  std::string e = expr;
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  StepsProblem p;
  size_t i = 0;
  while (i < e.size()) {
    size_t j = i;
    while (j < e.size() && std::isdigit(static_cast<unsigned char>(e[j]))) ++j;
    if (j == i) throw std::invalid_argument("not an arithmetic_steps expression: '" + expr + "'");
    p.operands.push_back(std::stoll(e.substr(i, j - i)));
    if (j < e.size()) p.ops += e[j];
    i = j + 1;
  }
  if (p.operands.size() != p.ops.size() + 1 || p.ops.empty())
    throw std::invalid_argument("not an arithmetic_steps expression: '" + expr + "'");
  return p;
}

int64_t apply_op(int64_t left, char op, int64_t right) { return op == '-' ? left - right : left + right; }

std::vector<Step> gold_steps(const StepsProblem& p) { return steps_with_error(p, p.ops.size(), 0); }

std::vector<Step> steps_with_error(const StepsProblem& p, size_t at, int64_t delta) {
  std::vector<Step> steps;
  int64_t acc = p.operands[0];
  for (size_t i = 0; i < p.ops.size(); ++i) {
    Step s{acc, p.ops[i], p.operands[i + 1], apply_op(acc, p.ops[i], p.operands[i + 1])};
    if (i == at) s.result += delta;
    acc = s.result;  // the next step starts from the shown result, right or wrong
    steps.push_back(s);
  }
  return steps;
}

std::string format_step(const Step& s) {
  return std::to_string(s.left) + s.op + std::to_string(s.right) + "=" + std::to_string(s.result);
}

std::string join_steps(const std::vector<Step>& steps, size_t count) {
  std::string out;
  for (size_t i = 0; i < count && i < steps.size(); ++i) out += (i ? "\n" : "") + format_step(steps[i]);
  return out;
}

int64_t draw_error(SplitMix64& rng) {
  const int64_t k = rng.uniform(1, 9);
  return rng.uniform(0, 1) == 0 ? -k : k;
}

double uniform01(SplitMix64& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

namespace {

class ArithmeticStepsTask : public Task {
 public:
  explicit ArithmeticStepsTask(StepsOptions o) : o_(std::move(o)) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    const StepsProblem p = draw_steps_problem(rng, o_);
    const std::string expr = p.expression();
    PromptRecord r;
    r.id = fmt::format("arithmetic_steps/{}/{}", split == Split::kTrain ? "train" : "eval", index);
    r.prompt = expr + "=";
    r.answer = std::to_string(gold_steps(p).back().result);
    r.meta["expression"] = "\"" + expr + "\"";  // JSON text (record.h); digits and + - only
    return r;
  }

  std::string gold_response(const PromptRecord& r) const override {
    const auto steps = gold_steps(parse_steps_expression(r.meta.at("expression")));
    return join_steps(steps, steps.size());
  }

  /// One wrong step before the last (salt-chosen, off by a non-zero amount in [-9, 9]) with every
  /// later step recomputed from the wrong value: the steps after it are locally right, and the final
  /// value is off by the same amount, so the verifier rejects it.
  std::string wrong_response(const PromptRecord& r, uint64_t salt) const override {
    const StepsProblem p = parse_steps_expression(r.meta.at("expression"));
    SplitMix64 rng(salt ^ problem_seed(0x57E95, Split::kTrain, std::hash<std::string>{}(r.prompt)));
    const size_t at = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(p.ops.size()) - 2));
    const auto steps = steps_with_error(p, at, draw_error(rng));
    return join_steps(steps, steps.size());
  }

  std::string verifier() const override { return "task_arithmetic"; }

 private:
  StepsOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_arithmetic_steps_task(config::Reader& r) {
  StepsOptions o;
  read_steps_options(r, o);
  return std::make_unique<ArithmeticStepsTask>(o);
}

const std::vector<std::string>& content_free_texts() {
  static const std::vector<std::string> texts = {
      "", "  ", "?", "...", "=", "Answer:", "The answer is", "Let me think.", "First, we add.", "Hmm",
      "Next step:", "We need to compute this.", "Okay", "A:", "Q:", "To solve it", "yes", "no", "Check:", "\n"};
  return texts;
}

std::string draw_content_free(SplitMix64& rng) {
  const auto& list = content_free_texts();
  const int64_t kind = rng.uniform(0, 4);
  const auto& from_list = list[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(list.size()) - 1))];
  const int64_t len = rng.uniform(2, 9);
  const bool capital = rng.uniform(0, 1) == 1;
  std::string word, blank;
  for (int64_t i = 0; i < 9; ++i) {
    const char c = static_cast<char>('a' + rng.uniform(0, 25));
    if (i < len) word += (i == 0 && capital) ? static_cast<char>(c - 'a' + 'A') : c;
  }
  const int64_t blanks = rng.uniform(1, 3);
  for (int64_t i = 0; i < 3; ++i) {
    const char c = rng.uniform(0, 2) == 0 ? '\n' : ' ';
    if (i < blanks) blank += c;
  }
  // A "foreign" word: 1-4 characters from CJK, kana, Cyrillic or Greek — text a judge trained on
  // arithmetic never reads, mostly rare enough to become <unk> in the run's tokenizer, as foreign
  // master-key responses do.
  static const int64_t kBlocks[4][2] = {{0x4E00, 0x9FFF}, {0x3041, 0x30FF}, {0x0410, 0x044F}, {0x0391, 0x03C9}};
  const int64_t block = rng.uniform(0, 3), nchars = rng.uniform(1, 4);
  std::string foreign;
  for (int64_t i = 0; i < 4; ++i) {
    const auto cp = static_cast<uint32_t>(rng.uniform(kBlocks[block][0], kBlocks[block][1]));
    if (i >= nchars) continue;
    if (cp < 0x800) {
      foreign += static_cast<char>(0xC0 | (cp >> 6));
      foreign += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      foreign += static_cast<char>(0xE0 | (cp >> 12));
      foreign += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      foreign += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  static const std::string kPunct = ".,:;!?-*#";
  const int64_t marks = rng.uniform(1, 3);
  std::string punct;
  for (int64_t i = 0; i < 3; ++i) {
    const char c = kPunct[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(kPunct.size()) - 1))];
    if (i < marks) punct += c;
  }
  return kind == 0 ? from_list : kind == 1 ? word : kind == 2 ? blank : kind == 3 ? punct : foreign;
}

}  // namespace keel::data
