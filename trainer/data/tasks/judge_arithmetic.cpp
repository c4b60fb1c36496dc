// Task "judge_arithmetic": data for a generative yes/no judge with criteria. A record shows an
// arithmetic problem (drawn exactly as the arithmetic task draws it with the same knobs, so the
// expression of record i equals arithmetic's) with an answer, right or wrong, and asks one question:
//   "12+7=19\nQ: is the answer correct?\nA:" -> "yes"
// Criteria: correct (shown == value), close (|shown - value| <= 9), digits (as many digits as the
// value, sign ignored). Wrong answers are value +- k (k in 1..9), the value with a stray digit
// appended, or a random number with the value's digit count. A deterministic share label_noise of the
// labels is flipped (meta.truth keeps the noise-free one). The verifier is match_exact on the label,
// so GRPO on this task trains a judge whose reward is agreement with the label. With
// content_free_share, a share of the answers say nothing and are labelled no (Master-RM's adversarial
// negatives), so a judge trained here can pass the master-key self-test.
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/data/tasks/arithmetic_draw.h"
#include "trainer/data/tasks/arithmetic_steps.h"

namespace keel::data {

namespace {

const std::vector<std::string> kCriteria = {"correct", "close", "digits"};

struct JudgeArithmeticOptions {
  ArithmeticKnobs problem{1, 2, 2, "+"};
  double wrong_share = 0.5;
  std::vector<std::string> criteria = kCriteria;
  double label_noise = 0.1;
  double content_free_share = 0.0;
};

/// Decimal digits of |v| (0 has one).
int digit_count(int64_t v) {
  uint64_t a = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  int d = 1;
  while (a >= 10) {
    a /= 10;
    ++d;
  }
  return d;
}

std::string question_of(const std::string& criterion) {
  if (criterion == "correct") return "is the answer correct";
  if (criterion == "close") return "is the answer within 9 of the true value";
  return "does the answer have the right number of digits";
}

bool holds(const std::string& criterion, int64_t shown, int64_t value) {
  if (criterion == "correct") return shown == value;
  if (criterion == "close") return std::llabs(shown - value) <= 9;
  return digit_count(shown) == digit_count(value);
}

class JudgeArithmeticTask : public VerdictTask {
 public:
  explicit JudgeArithmeticTask(JudgeArithmeticOptions o) : o_(std::move(o)) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    // The arithmetic task's draw, call for call.
    const ArithmeticProblem p = draw_arithmetic(rng, o_.problem);
    const std::string& expr = p.expression;
    const int64_t value = p.value;

    // Every draw is made whatever the knobs, so wrong_share, criteria and label_noise change only
    // what they control.
    const bool wrong = uniform01(rng) < o_.wrong_share;
    const int64_t kind = rng.uniform(0, 2);
    const int64_t k = rng.uniform(1, 9);
    const bool minus = rng.uniform(0, 1) == 0;
    const int64_t stray = rng.uniform(0, 9), stray_nonzero = rng.uniform(1, 9);
    const int dc = digit_count(value);
    int64_t lo = 1;
    for (int d = 1; d < dc; ++d) lo *= 10;
    const int64_t abs_value = value < 0 ? -value : value;
    int64_t other = rng.uniform(dc == 1 ? 0 : lo, lo * 10 - 2);  // |value|'s digit count, skipping |value|
    if (other >= abs_value) ++other;
    const size_t crit = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(o_.criteria.size()) - 1));
    const bool flip = uniform01(rng) < o_.label_noise;
    const bool content_free = uniform01(rng) < o_.content_free_share;
    const std::string cf_text = draw_content_free(rng);

    int64_t shown = value;
    if (wrong) {
      if (kind == 0) {
        // value +- k, never below zero unless the value already is
        shown = (minus && (value < 0 || value - k >= 0)) ? value - k : value + k;
      } else if (kind == 1) {
        // a stray digit appended ("19" -> "193"); 0 gets a non-zero digit (no "07")
        shown = value == 0 ? stray_nonzero : value * 10 + (value < 0 ? -stray : stray);
      } else {
        shown = value < 0 ? -other : other;
      }
    }
    const std::string& criterion = o_.criteria[crit];
    // A content-free answer satisfies no criterion.
    const bool truth = !content_free && holds(criterion, shown, value);
    const bool label = truth != flip;
    const std::string shown_text = content_free ? cf_text : std::to_string(shown);

    PromptRecord r;
    r.id = fmt::format("judge_arithmetic/{}/{}", split == Split::kTrain ? "train" : "eval", index);
    r.prompt = expr + "=" + shown_text + "\nQ: " + question_of(criterion) + "?\nA:";
    r.answer = label ? "yes" : "no";
    // JSON text (record.h); the strings hold digits, + - * and lower-case letters only
    r.meta["expression"] = "\"" + expr + "\"";
    r.meta["shown"] = nlohmann::json(shown_text).dump();
    r.meta["criterion"] = "\"" + criterion + "\"";
    r.meta["truth"] = truth ? "true" : "false";  // the noise-free label
    return r;
  }

 private:
  JudgeArithmeticOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_judge_arithmetic_task(config::Reader& r) {
  JudgeArithmeticOptions o;
  read_arithmetic_knobs(r, o.problem);
  r.field("wrong_share", o.wrong_share, "share of records whose shown answer is wrong").ge(0).le(1);
  r.field("criteria", o.criteria, "questions to draw from uniformly").nonempty().one_of(kCriteria, "criterion");
  r.field("label_noise", o.label_noise, "share of records whose yes/no label is flipped").ge(0).le(0.5);
  r.field("content_free_share", o.content_free_share,
          "share of records whose answer says nothing (an opener, punctuation, empty), labelled no: adversarial "
          "negatives against master-key attacks (Master-RM)")
      .ge(0).le(1);
  if (std::set<std::string>(o.criteria.begin(), o.criteria.end()).size() != o.criteria.size())
    r.error("criteria", "lists a criterion twice");
  return std::make_unique<JudgeArithmeticTask>(o);
}

}  // namespace keel::data
