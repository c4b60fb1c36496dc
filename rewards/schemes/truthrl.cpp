// TruthRL ternary reward (see truthrl.h).
#include "rewards/schemes/truthrl.h"

#include <cctype>
#include <sstream>

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

std::string squad_normalize(const std::string& s) {
  std::string no_punct;
  no_punct.reserve(s.size());
  for (unsigned char c : s) {
    if (std::ispunct(c)) continue;  // Python's string.punctuation == ASCII ispunct
    no_punct.push_back(static_cast<char>(std::tolower(c)));
  }
  std::istringstream words(no_punct);
  std::string w, out;
  while (words >> w) {
    if (w == "a" || w == "an" || w == "the") continue;
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

bool extract_last_boxed(const std::string& text, std::string& out) {
  const std::string tag = "\\boxed{";
  size_t pos = text.rfind(tag);
  while (pos != std::string::npos) {
    int depth = 1;
    size_t i = pos + tag.size();
    for (; i < text.size() && depth > 0; ++i) {
      if (text[i] == '{') ++depth;
      else if (text[i] == '}') --depth;
    }
    if (depth == 0) {
      out = text.substr(pos + tag.size(), i - 1 - (pos + tag.size()));
      return true;
    }
    if (pos == 0) break;
    pos = text.rfind(tag, pos - 1);  // unbalanced: try an earlier box
  }
  return false;
}

TruthVerdict truthrl_classify(const std::string& response, const std::vector<std::string>& golds,
                              const TruthJudge& judge, const TruthRlOptions& o) {
  std::string boxed;
  if (!extract_last_boxed(response, boxed)) return TruthVerdict::kFormatFailure;
  const std::string pred = squad_normalize(boxed);
  if (pred.find(o.abstain_phrase) != std::string::npos) return TruthVerdict::kAbstain;
  const bool says_invalid = pred.find(o.invalid_phrase) != std::string::npos;
  if (says_invalid && o.invalid_check == "before_match") return TruthVerdict::kInvalidQuestion;
  for (const auto& g : golds)
    if (squad_normalize(g) == pred) return TruthVerdict::kCorrect;
  if (o.use_judge && judge)
    for (const auto& g : golds)
      if (judge(boxed, g)) return TruthVerdict::kCorrect;
  return says_invalid ? TruthVerdict::kInvalidQuestion : TruthVerdict::kHallucination;
}

double truthrl_reward(TruthVerdict v, bool out_of_knowledge, const TruthRlOptions& o) {
  const bool abstain = v == TruthVerdict::kAbstain;
  if (o.variant == "binary") return v == TruthVerdict::kCorrect ? 1.0 : -1.0;
  if (o.variant == "ternary_ook" && out_of_knowledge) return abstain ? 1.0 : -1.0;
  if (abstain) return 0.0;
  return v == TruthVerdict::kCorrect ? 1.0 : -1.0;
}

at::Tensor truthrl_rewards(const std::vector<TruthVerdict>& verdicts, const at::Tensor& out_of_knowledge,
                           const TruthRlOptions& o) {
  const int64_t n = static_cast<int64_t>(verdicts.size());
  TORCH_CHECK(!out_of_knowledge.defined() || (out_of_knowledge.dim() == 1 && out_of_knowledge.size(0) == n),
              "truthrl_rewards: out_of_knowledge must be [N] with N = ", n);
  at::Tensor ook = out_of_knowledge.defined() ? out_of_knowledge.to(torch::kBool).cpu() : at::Tensor();
  std::vector<double> out(verdicts.size());
  for (int64_t i = 0; i < n; ++i) out[i] = truthrl_reward(verdicts[i], ook.defined() && ook[i].item<bool>(), o);
  return torch::tensor(out, torch::kFloat64);
}

at::Tensor truthrl_reasoning_enhanced(const at::Tensor& outcome, const at::Tensor& reasoning, const at::Tensor& correct,
                                      const TruthRlOptions& o) {
  TORCH_CHECK(outcome.dim() == 1 && reasoning.sizes() == outcome.sizes() && correct.sizes() == outcome.sizes(),
              "truthrl_reasoning_enhanced: outcome ", outcome.sizes(), ", reasoning ", reasoning.sizes(), ", correct ",
              correct.sizes(), " must all be [N]");
  at::Tensor extra = o.reasoning_weight * reasoning.to(torch::kFloat64);
  if (o.reasoning_gate_on_correct) extra = extra * correct.to(torch::kFloat64);
  return outcome.to(torch::kFloat64) + extra;
}

double truthfulness_score(const std::vector<TruthVerdict>& verdicts) {
  if (verdicts.empty()) return 0.0;
  double correct = 0, abstain = 0;
  for (auto v : verdicts) {
    correct += v == TruthVerdict::kCorrect;
    abstain += v == TruthVerdict::kAbstain;
  }
  const double n = static_cast<double>(verdicts.size());
  return (2.0 * correct + abstain - n) / n;
}

void read_truthrl_options(config::Reader& r, TruthRlOptions& o) {
  r.field("variant", o.variant, "reward table").one_of({"binary", "ternary", "ternary_ook"}, "truthrl variant");
  r.field("abstain_phrase", o.abstain_phrase, "normalised substring that marks an abstention").nonempty();
  r.field("invalid_phrase", o.invalid_phrase, "normalised substring that marks an 'invalid question' answer").nonempty();
  r.field("invalid_check", o.invalid_check, "run the invalid-question check before (as released) or after gold matching")
      .one_of({"before_match", "after_match"}, "invalid_check");
  r.field("use_judge", o.use_judge, "when exact match fails, take the LLM judge's verdict from extra.judge_correct [N] "
                                    "(no stage fills it yet: false = exact match only)");
  r.field("reasoning_weight", o.reasoning_weight, "weight of the 0/1 reasoning judge score (0 = off)").ge(0);
  r.field("reasoning_gate_on_correct", o.reasoning_gate_on_correct, "reasoning score only for correct answers");
}

}  // namespace keel::rewards
