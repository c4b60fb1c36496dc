// TruthRL ternary reward (spec rewards.md A4; Wei et al., arXiv 2509.25760, read in the fork
// kalash-kala/TruthRL training/verl/verl/utils/reward_score/truthrl_qa.py).
//   no \boxed{} answer -> −1;  abstain ("i dont know" in the normalised answer) -> 0;
//   "invalid question" -> −1;  correct (exact match or judge) -> +1;  otherwise -> −1.
// Variants: binary (abstain −1), ternary, ternary_ook (out-of-knowledge questions: abstain +1,
// any answer −1). The LLM judge is a callback owned by the scorer; this file never calls a model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

enum class TruthVerdict { kFormatFailure, kAbstain, kInvalidQuestion, kCorrect, kHallucination };

struct TruthRlOptions {
  std::string variant = "ternary";              ///< binary | ternary | ternary_ook
  std::string abstain_phrase = "i dont know";   ///< substring of the normalised answer
  std::string invalid_phrase = "invalid question";
  /// Where the "invalid question" check runs. The released code checks it before matching
  /// ("before_match"), so it gives −1 even when the gold answer is "invalid question"; the spec
  /// suggests matching the gold first ("after_match", default — a deliberate deviation).
  std::string invalid_check = "after_match";
  bool use_judge = true;                        ///< ask the judge when exact match fails
  /// Reasoning-enhanced variant: weight of the extra 0/1 judge score of the thinking text (0 = off).
  double reasoning_weight = 0.0;
  bool reasoning_gate_on_correct = true;        ///< count the reasoning score only for correct answers
};

/// SQuAD-style normalisation: lower-case, ASCII punctuation removed, articles (a, an, the) removed,
/// whitespace collapsed. "I don't know." -> "i dont know".
std::string squad_normalize(const std::string& s);
/// Contents of the last balanced \boxed{...}; false when there is none.
bool extract_last_boxed(const std::string& text, std::string& out);

/// judge(prediction, gold) -> correct? Called once per gold answer until one says yes.
using TruthJudge = std::function<bool(const std::string& prediction, const std::string& gold)>;

/// Classifies one response against its gold answers. `judge` may be empty (exact match only).
TruthVerdict truthrl_classify(const std::string& response, const std::vector<std::string>& golds,
                              const TruthJudge& judge, const TruthRlOptions& o);
/// Reward of one verdict under the configured variant; `out_of_knowledge` only matters for ternary_ook.
double truthrl_reward(TruthVerdict v, bool out_of_knowledge, const TruthRlOptions& o);
/// Rewards [N] (float64) of a batch of verdicts; out_of_knowledge [N] bool may be undefined.
at::Tensor truthrl_rewards(const std::vector<TruthVerdict>& verdicts, const at::Tensor& out_of_knowledge,
                           const TruthRlOptions& o);
/// Reasoning-enhanced reward [N] = outcome + w·reasoning (·1[correct] when gated). The fork only
/// says the scores are "combined" and that the combination can be gated on correctness; the
/// additive form is an INTERPRETATION. outcome [N], reasoning [N] (0/1), correct [N] bool.
at::Tensor truthrl_reasoning_enhanced(const at::Tensor& outcome, const at::Tensor& reasoning, const at::Tensor& correct,
                                      const TruthRlOptions& o);
/// Truthfulness score (2·n_correct + n_abstain − N)/N = accuracy − hallucination rate, where every
/// non-correct, non-abstain verdict counts as a hallucination.
double truthfulness_score(const std::vector<TruthVerdict>& verdicts);

void read_truthrl_options(config::Reader& r, TruthRlOptions& o);

}  // namespace keel::rewards
