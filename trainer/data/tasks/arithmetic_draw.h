// The arithmetic task's problem draw and evaluation, shared by the tasks that must show the same
// problems (arithmetic, and the judge data of judge_arithmetic: record i of either is the same
// expression for the same knobs), and the yes/no label plumbing of the judge-data tasks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/task.h"

namespace keel::config {
class Reader;
}

namespace keel::data {

/// n0 op0 n1 op1 ... with its text and precedence-aware value (* before + and -).
struct ArithmeticProblem {
  std::vector<int64_t> nums;
  std::string ops;
  std::string expression;  ///< "12+7*3" (no "=")
  int64_t value = 0;
};

/// The knobs of an arithmetic problem (defaults: the arithmetic task's).
struct ArithmeticKnobs {
  int min_digits = 1;
  int max_digits = 2;
  int operands = 2;
  std::string ops = "+-";
};
/// Reads min_digits, max_digits, operands (>= min_operands; `operands_doc` says what they are) and
/// ops (a non-empty subset of `allowed_ops`), with their checks.
void read_arithmetic_knobs(config::Reader& r, ArithmeticKnobs& k, int min_operands = 2,
                           const std::string& allowed_ops = "+-*",
                           const std::string& operands_doc = "numbers in the expression");

/// Per operand: a digit count in [min_digits, max_digits], the operand, then (but for the last) an
/// operator from `ops` — the arithmetic task's draw order, call for call.
ArithmeticProblem draw_arithmetic(SplitMix64& rng, const ArithmeticKnobs& k);

/// Precedence-aware evaluation of n0 op0 n1 op1 n2 ...
int64_t evaluate_arithmetic(const std::vector<int64_t>& nums, const std::string& ops);

/// A task whose answer is a judge's verdict, "yes" or "no" (judge_arithmetic, prm_arithmetic,
/// pairwise_arithmetic): the gold response is the label itself — no leading space, so that a
/// SentencePiece tokenizer's dummy prefix makes it the one piece "▁yes" right after "A:", where a
/// judge reads it —, the wrong one the other label, match_exact the verifier, and the run's
/// tokenizer keeps both labels whole.
class VerdictTask : public Task {
 public:
  std::string gold_response(const PromptRecord& r) const override { return r.answer; }
  std::string wrong_response(const PromptRecord& r, uint64_t /*salt*/) const override {
    return r.answer == "yes" ? "no" : "yes";
  }
  std::string verifier() const override { return "match_exact"; }
  std::vector<std::string> tokenizer_symbols() const override { return {"\xE2\x96\x81yes", "\xE2\x96\x81no"}; }
};

}  // namespace keel::data
