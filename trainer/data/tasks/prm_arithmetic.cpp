// Task "prm_arithmetic": data for a process reward model on arithmetic_steps. A record shows a
// problem and the first k of its steps, some possibly wrong, and asks whether the LAST shown step is
// correct:
//   "3+14+5+6=3+14=17\n17+5=23\nQ: is the last step correct?\nA:" -> "no"
// Labels are LOCAL correctness: a step is correct when its own arithmetic is right given its shown
// left operand, so a step after an earlier error that it carries forward ("3+14=18\n18+5=23") is
// labelled yes. Math-Shepherd-style hard labels (does any continuation of this prefix still reach
// the right answer?) would call every step after the first error wrong; this task does not.
// A generative judge answers "yes" / "no"; the verifier is match_exact on the (noisy) label.
#include <functional>

#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/data/tasks/arithmetic_draw.h"
#include "trainer/data/tasks/arithmetic_steps.h"

namespace keel::data {

namespace {

struct PrmArithmeticOptions {
  StepsOptions steps;
  double wrong_share = 0.5;
  double label_noise = 0.1;
  double content_free_share = 0.0;
};

class PrmArithmeticTask : public VerdictTask {
 public:
  explicit PrmArithmeticTask(PrmArithmeticOptions o) : o_(std::move(o)) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    const StepsProblem p = draw_steps_problem(rng, o_.steps);
    const int64_t n = static_cast<int64_t>(p.ops.size());
    // Every draw is made whatever the knobs, so wrong_share and label_noise change only what they
    // control (the same problems and prefixes at any label_noise).
    const int64_t k = rng.uniform(1, n);                      // steps shown
    const bool wrong = uniform01(rng) < o_.wrong_share;
    const bool earlier = rng.uniform(0, 1) == 1;              // the error before the last step (when k > 1)
    const int64_t earlier_at = rng.uniform(0, k >= 2 ? k - 2 : 0);
    const int64_t delta = draw_error(rng);
    const bool flip = uniform01(rng) < o_.label_noise;
    const bool content_free = uniform01(rng) < o_.content_free_share;
    const std::string cf_text = draw_content_free(rng);

    const size_t at = !wrong ? p.ops.size() : static_cast<size_t>(earlier && k > 1 ? earlier_at : k - 1);
    const std::vector<Step> steps = steps_with_error(p, at, delta);
    const Step& last = steps[static_cast<size_t>(k - 1)];
    // A content-free last step (it replaces step k) is never a correct step.
    const bool truth = !content_free && last.result == apply_op(last.left, last.op, last.right);
    const bool label = truth != flip;

    const std::string expr = p.expression();
    PromptRecord r;
    r.id = fmt::format("prm_arithmetic/{}/{}", split == Split::kTrain ? "train" : "eval", index);
    const std::string shown = content_free ? (k > 1 ? join_steps(steps, static_cast<size_t>(k - 1)) + "\n" : "") + cf_text
                                           : join_steps(steps, static_cast<size_t>(k));
    r.prompt = expr + "=" + shown + "\nQ: is the last step correct?\nA:";
    r.answer = label ? "yes" : "no";
    // JSON text (record.h)
    r.meta["expression"] = "\"" + expr + "\"";
    r.meta["truth"] = truth ? "true" : "false";  // the noise-free label
    r.meta["step"] = std::to_string(k);          // steps shown (the one asked about), 1-based
    return r;
  }

 private:
  PrmArithmeticOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_prm_arithmetic_task(config::Reader& r) {
  PrmArithmeticOptions o;
  read_steps_options(r, o.steps);
  r.field("wrong_share", o.wrong_share,
          "share of records with one wrong step (the last shown one, or an earlier one carried forward)")
      .ge(0).le(1);
  r.field("label_noise", o.label_noise, "share of records whose yes/no label is flipped").ge(0).le(0.5);
  r.field("content_free_share", o.content_free_share,
          "share of records whose last step says nothing (an opener, punctuation, empty), labelled no: adversarial "
          "negatives against master-key attacks (Master-RM)")
      .ge(0).le(1);
  return std::make_unique<PrmArithmeticTask>(o);
}

}  // namespace keel::data
