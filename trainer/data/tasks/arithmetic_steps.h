// Shared pieces of the step-by-step arithmetic tasks (arithmetic_steps and prm_arithmetic): the
// problem draw, the left-to-right steps and their text. A step is "<acc><op><n>=<result>", e.g.
// "17+5=22" or "-4+5=1"; steps are joined by "\n". Not a general expression evaluator: + and - only,
// evaluated left to right (which is also the usual precedence for + and -).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/task.h"
#include "trainer/data/tasks/arithmetic_draw.h"

namespace keel::data {

/// The arithmetic knobs with the steps tasks' defaults (4 operands, + and -).
struct StepsOptions : ArithmeticKnobs {
  StepsOptions() : ArithmeticKnobs{1, 2, 4, "+-"} {}
};

/// Reads the knobs min_digits, max_digits, operands and ops (a subset of "+-") with their checks.
void read_steps_options(config::Reader& r, StepsOptions& o);

/// n0 op0 n1 op1 n2 ...: operands.size() == ops.size() + 1, operands >= 0.
struct StepsProblem {
  std::vector<int64_t> operands;
  std::string ops;
  /// "3+14+5+6" (no "=").
  std::string expression() const;
};

/// One step: left op right = result. `result` is what is shown; it is right when it equals
/// apply(left, op, right) (local correctness: `left` is taken as shown).
struct Step {
  int64_t left = 0;
  char op = '+';
  int64_t right = 0;
  int64_t result = 0;
};

/// Draws a problem from `rng` (per operand: a digit count, the operand, then the next operator),
/// the same draw order as the arithmetic task.
StepsProblem draw_steps_problem(SplitMix64& rng, const StepsOptions& o);
/// Parses "3+14+5+6" (or the JSON text "\"3+14+5+6\"" of meta.expression) back into a problem.
StepsProblem parse_steps_expression(const std::string& expr);

int64_t apply_op(int64_t left, char op, int64_t right);
/// The correct steps, left to right: ops.size() of them.
std::vector<Step> gold_steps(const StepsProblem& p);
/// The steps with step `at`'s result changed by `delta` and every later step recomputed from the
/// wrong value (the error propagates; later steps are locally right).
std::vector<Step> steps_with_error(const StepsProblem& p, size_t at, int64_t delta);

/// "17+5=22"; a negative left operand or result is written with its sign ("-4-5=-9").
std::string format_step(const Step& s);
/// The first `count` steps joined by "\n".
std::string join_steps(const std::vector<Step>& steps, size_t count);

/// A salt-chosen non-zero error in [-9, 9] (both signs: these tasks allow negative results).
int64_t draw_error(SplitMix64& rng);
/// A uniform double in [0, 1) from one draw.
double uniform01(SplitMix64& rng);

/// Content-free "answers" for the judge tasks' adversarial negatives (Master-RM's recipe against
/// master-key attacks: a judge must say "no" to a response that says nothing). [interp] Our own
/// list of openers, punctuation and empty text — deliberately not the master-key suite's strings
/// (rewards/models/master_keys.h), so the start-up self-test measures generalisation, not recall.
const std::vector<std::string>& content_free_texts();
/// One content-free answer drawn from `rng` (always the same number of draws): a fifth each from
/// content_free_texts(), a random word of 2-9 letters (capitalised half the time) — no digits, so
/// nothing to check —, a run of 1-3 spaces / newlines, 1-3 punctuation marks, and a "foreign" word
/// of 1-4 CJK / kana / Cyrillic / Greek characters.
std::string draw_content_free(SplitMix64& rng);

}  // namespace keel::data
