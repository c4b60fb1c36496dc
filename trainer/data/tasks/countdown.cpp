// Task "countdown": reach a target from given numbers with + - * / and parentheses, each number
// used exactly once ("3 7 8 -> 80:" -> "(3+7)*8"). Targets are made from a random expression over
// the numbers, so every problem has a solution (the gold response), with exact division only.
#include "base/reader.h"
#include "trainer/data/task.h"

namespace keel::data {

namespace {

struct CountdownOptions {
  int numbers = 3;
  int max_number = 9;
  int max_target = 100;
  std::string ops = "+-*/";
};

struct Expr {
  int64_t value;
  std::string text;
  char op;  // 0 for a number
};

int prec(char op) { return op == '+' || op == '-' ? 1 : op == '*' || op == '/' ? 2 : 3; }

std::string wrap(const Expr& e, bool paren) { return paren ? "(" + e.text + ")" : e.text; }

class CountdownTask : public Task {
 public:
  explicit CountdownTask(CountdownOptions o) : o_(std::move(o)) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    for (int attempt = 0;; ++attempt) {
      std::vector<int64_t> nums;
      for (int i = 0; i < o_.numbers; ++i) nums.push_back(rng.uniform(1, o_.max_number));
      Expr e;
      if (!build(rng, nums, e) || e.value < 1 || e.value > o_.max_target) {
        if (attempt < 1000) continue;
        // Always reachable fallback: the sum.
        e = Expr{0, "", '+'};
        for (size_t i = 0; i < nums.size(); ++i) {
          e.value += nums[i];
          e.text += (i ? "+" : "") + std::to_string(nums[i]);
        }
      }
      std::string shown, list;
      for (size_t i = 0; i < nums.size(); ++i) {
        shown += (i ? " " : "") + std::to_string(nums[i]);
        list += (i ? ", " : "") + std::to_string(nums[i]);
      }
      PromptRecord r;
      r.id = fmt::format("countdown/{}/{}", split == Split::kTrain ? "train" : "eval", index);
      r.prompt = shown + " -> " + std::to_string(e.value) + ":";
      r.answer = std::to_string(e.value);
      // meta values are JSON text (record.h): what the task_countdown verifier reads.
      r.meta["numbers"] = "[" + list + "]";
      r.meta["target"] = r.answer;
      r.meta["use_all"] = "true";
      r.meta["solution"] = "\"" + e.text + "\"";  // digits and + - * / ( ): no escaping needed
      return r;
    }
  }

  std::string gold_response(const PromptRecord& r) const override {
    const std::string& s = r.meta.at("solution");
    return s.substr(1, s.size() - 2);
  }
  std::string verifier() const override { return "task_countdown"; }

 private:
  /// Combines the numbers (in a shuffled order) pairwise with random operators until one is left.
  bool build(SplitMix64& rng, std::vector<int64_t> nums, Expr& out) const {
    std::vector<Expr> items;
    for (auto n : nums) items.push_back(Expr{n, std::to_string(n), 0});
    while (items.size() > 1) {
      const size_t i = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(items.size()) - 1));
      Expr a = items[i];
      items.erase(items.begin() + static_cast<long>(i));
      const size_t j = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(items.size()) - 1));
      Expr b = items[j];
      items.erase(items.begin() + static_cast<long>(j));
      const char op = o_.ops[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(o_.ops.size()) - 1))];
      Expr c{0, "", op};
      switch (op) {
        case '+': c.value = a.value + b.value; break;
        case '-': c.value = a.value - b.value; break;
        case '*': c.value = a.value * b.value; break;
        case '/':
          if (b.value == 0 || a.value % b.value != 0) return false;
          c.value = a.value / b.value;
          break;
      }
      // Parenthesise a child that binds looser than its parent; the right child of - and / also
      // when it binds equally (a-(b-c)).
      const bool pl = a.op && prec(a.op) < prec(op);
      const bool pr = b.op && (prec(b.op) < prec(op) || (prec(b.op) == prec(op) && (op == '-' || op == '/')));
      c.text = wrap(a, pl) + op + wrap(b, pr);
      items.push_back(c);
    }
    out = items[0];
    return true;
  }

  CountdownOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_countdown_task(config::Reader& r) {
  CountdownOptions o;
  r.field("numbers", o.numbers, "how many numbers are given (each used exactly once)").ge(2).le(6);
  r.field("max_number", o.max_number, "numbers are drawn from 1..max_number").ge(1).le(1000);
  r.field("max_target", o.max_target, "largest target").ge(1);
  r.field("ops", o.ops, "operators the generator uses, any of + - * /").nonempty();
  for (char c : o.ops)
    if (c != '+' && c != '-' && c != '*' && c != '/') {
      r.error("ops", fmt::format("may only contain + - * /, got '{}'", c));
      break;
    }
  return std::make_unique<CountdownTask>(o);
}

}  // namespace keel::data
