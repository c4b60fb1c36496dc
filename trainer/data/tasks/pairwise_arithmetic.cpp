// Task "pairwise_arithmetic": data for a pairwise generative judge. A record shows an arithmetic
// problem (the arithmetic task's draw, one-digit sums by default) and two answers, and asks whether
// the first is better:
//   "3+4=\nA: 7\nB: 9\nQ: is A better than B?\nA:" -> "yes"
// "Better" is "strictly closer to the true value" ([interp] a graded preference, so that two wrong
// answers are still ordered); a content-free answer (content_free_share, Master-RM's adversarial
// negatives) is never better, and a numeric answer is always better than a content-free one. Equal
// distances (both right, or equally wrong) are "no". A share label_noise of the labels is flipped
// (meta.truth keeps the noise-free one). The verifier is match_exact on the label, so GRPO here
// trains a pairwise judge whose reward is agreement with the preference (a generative RM).
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/data/tasks/arithmetic_draw.h"
#include "trainer/data/tasks/arithmetic_steps.h"

namespace keel::data {

namespace {

struct PairwiseOptions {
  int max_digits = 1;
  double wrong_share = 0.6;
  double label_noise = 0.1;
  double content_free_share = 0.2;
};

class PairwiseArithmeticTask : public VerdictTask {
 public:
  explicit PairwiseArithmeticTask(PairwiseOptions o) : o_(o) {}

  PromptRecord make(uint64_t seed, Split split, uint64_t index) const override {
    SplitMix64 rng(problem_seed(seed, split, index));
    int64_t hi = 1;
    for (int d = 0; d < o_.max_digits; ++d) hi *= 10;
    const int64_t a = rng.uniform(0, hi - 1), b = rng.uniform(0, hi - 1);
    const int64_t value = a + b;
    // Two answers; every draw is made whatever the knobs.
    std::string shown[2];
    int64_t dist[2];
    bool free[2];
    for (int k = 0; k < 2; ++k) {
      const bool wrong = uniform01(rng) < o_.wrong_share;
      const int64_t err = rng.uniform(1, 12) * (rng.uniform(0, 1) == 0 ? -1 : 1);
      free[k] = uniform01(rng) < o_.content_free_share;
      const std::string cf = draw_content_free(rng);
      const int64_t v = wrong && value + err >= 0 ? value + err : wrong ? value - err : value;
      shown[k] = free[k] ? cf : std::to_string(v);
      dist[k] = std::llabs(v - value);
    }
    const bool flip = uniform01(rng) < o_.label_noise;
    const bool truth = free[0] ? false : free[1] ? true : dist[0] < dist[1];
    const bool label = truth != flip;
    const std::string expr = std::to_string(a) + "+" + std::to_string(b);
    PromptRecord r;
    r.id = fmt::format("pairwise_arithmetic/{}/{}", split == Split::kTrain ? "train" : "eval", index);
    r.prompt = expr + "=\nA: " + shown[0] + "\nB: " + shown[1] + "\nQ: is A better than B?\nA:";
    r.answer = label ? "yes" : "no";
    r.meta["expression"] = "\"" + expr + "\"";
    r.meta["first"] = nlohmann::json(shown[0]).dump();
    r.meta["second"] = nlohmann::json(shown[1]).dump();
    r.meta["truth"] = truth ? "true" : "false";
    return r;
  }

 private:
  PairwiseOptions o_;
};

}  // namespace

std::unique_ptr<Task> make_pairwise_arithmetic_task(config::Reader& r) {
  PairwiseOptions o;
  r.field("max_digits", o.max_digits, "digits of each of the two operands of a + b").ge(1).le(6);
  r.field("wrong_share", o.wrong_share, "share of answers that are wrong (off by 1..12)").ge(0).le(1);
  r.field("label_noise", o.label_noise, "share of records whose yes/no label is flipped").ge(0).le(0.5);
  r.field("content_free_share", o.content_free_share, "share of answers that say nothing (never better)").ge(0).le(1);
  return std::make_unique<PairwiseArithmeticTask>(o);
}

}  // namespace keel::data
