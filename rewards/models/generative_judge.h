// generative_yes — a generative judge as a reward (spec D5a, RewardDance-style): a causal LM reads a
// judge prompt built from a template with the policy's prompt and response (and, for
// reference-based judging, the gold answer), and the reward is the probability that its next token
// is "yes":
//
//   r(x, y) = P("yes" | judge_prompt(x, y [, answer]))
//     two_way (default, spec-preferred): p_yes / (p_yes + p_no) = σ(LSE ℓ_yes − LSE ℓ_no)
//     softmax:                          p_yes under the full-vocabulary softmax
//   where p_yes (p_no) sums the probabilities of every surface variant (" yes", "Yes", ...) that is a
//   single token of the judge's tokenizer (spec D5a option (c)).
//
// At start-up (bind) the judge is run over the master-key suite (master_keys.h, spec D5b); when the
// share of content-free responses it accepts exceeds max_false_positive it is refused (keel::Error
// naming the scheme, the worst inputs and their scores) or, with on_master_key: warn, logged loudly.
// Scored in batches of batch_size left-padded prompts, no grad.
// Deliberately not here: chain-of-thought judging (generate a rationale, then read the verdict),
// pairwise comparison against a reference response, training the judge.
//
// Shape legend: N samples, V judge vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/models/master_keys.h"
#include "rewards/reward.h"

namespace keel::rewards {

enum class JudgeNormalize { kTwoWay, kSoftmax };

struct GenerativeJudgeOptions {
  std::string path;       ///< HF causal-LM directory of the judge
  std::string tokenizer;  ///< tokenizer file / directory; "" = path
  /// The judge prompt; {prompt}, {response} and (optionally) {answer} are replaced by the policy's
  /// prompt text, its response and metadata "answer". [interp] default wording.
  std::string prompt_template =
      "Decide whether the response correctly and completely answers the question.\n"
      "Question: {prompt}\nResponse: {response}\nIs the response correct? Answer yes or no.\nAnswer:";
  std::string chat_template = "plain";  ///< the rendered prompt as one user turn of this template ("plain" = as is)
  std::vector<std::string> yes_tokens = {" yes", " Yes", "yes", "Yes"};
  std::vector<std::string> no_tokens = {" no", " No", "no", "No"};
  JudgeNormalize normalize = JudgeNormalize::kTwoWay;
  int64_t batch_size = 8;
  int64_t max_length = 0;  ///< judge prompts longer than this keep their last tokens; 0 = the model's context
  std::string robustness_suite = "master_keys";  ///< master_keys | none
  /// The questions the suite asks: builtin (master_key_probes(): arithmetic, fact, equation in
  /// natural language) | run (the run's own prompts, `run_probes`: the judge's deployment
  /// distribution — [interp] for judges trained on one task's format, which the built-in
  /// questions are out of).
  std::string robustness_probes = "builtin";
  std::vector<MasterKeyProbe> run_probes;  ///< filled by the judge stage (JudgeContext::probes)
  double max_false_positive = 0.05;  ///< refuse (or warn) when the suite's false-positive rate is above this
  double false_positive_score = 0.5;  ///< a suite case scored above this is a false positive
  bool refuse = true;                 ///< on_master_key: refuse (true) | warn (false)
  /// The templates the robustness suite runs under (empty = {prompt_template}); the false-positive
  /// rate is the worst of them. A criteria judge lists one per criterion.
  std::vector<std::string> suite_templates;
  at::Device device = at::kCPU;  ///< where the judge's weights live (a run's judge stage: the learner's device)
};

/// Reads the params of a generative_yes component. Checks values and that `path` holds a
/// config.json; loads nothing.
/// `fields`: the {placeholders} the template may use (another name is an error at `template`).
void read_generative_judge_options(config::Reader& r, GenerativeJudgeOptions& o,
                                   const std::vector<std::string>& fields = {"prompt", "response", "answer"});

/// template with every {prompt}, {response}, {answer} and {criterion} replaced (single pass:
/// replaced text is not scanned again, so a response containing "{prompt}" stays literal).
std::string render_judge_prompt(const std::string& tmpl, const std::string& prompt, const std::string& response,
                                const std::string& answer, const std::string& criterion = "");
/// The {placeholder} names of a template that are not among `allowed` (a misspelt field).
std::vector<std::string> unknown_placeholders(const std::string& tmpl, const std::vector<std::string>& allowed);

/// P(yes) from next-token logits [N, V] (see the header): [N] float32. yes_ids / no_ids non-empty,
/// disjoint, inside V (no_ids unused by kSoftmax).
torch::Tensor judge_yes_probability(const torch::Tensor& logits, const std::vector<int64_t>& yes_ids,
                                    const std::vector<int64_t>& no_ids, JudgeNormalize mode);

/// The ids of the variants that encode to exactly one token (deduplicated, in order). `what` and
/// `where` name the list in the error thrown when none does (keel::Error showing each tokenization).
std::vector<int64_t> single_token_ids(const models::Tokenizer& tok, const std::vector<std::string>& variants,
                                      const std::string& what, const std::string& where);

/// A judge-side causal LM loaded for inference: LM head only, eval mode, no grad, on `device`.
models::Transformer load_judge_lm(const std::string& path, at::Device device);

/// A metadata value as text: a JSON string's contents, anything else its JSON dump.
std::string json_text(const nlohmann::json& v);

class GenerativeJudge : public RewardScheme {
 public:
  /// `where` names the component in messages (its params' YAML path).
  GenerativeJudge(GenerativeJudgeOptions opt, std::string where);
  /// Loads the judge and runs the robustness suite (refuses or warns). Idempotent.
  void bind(const RewardContext& ctx) override;
  /// rewards [N] = P(yes); metrics judge/p_yes_mean. Loads the judge first if bind() was not called.
  RewardOutput score(const RewardInput& in) override;

  /// P(yes) for explicit (prompt, response, answer) triples, batched. Exposed for the suite and tests.
  torch::Tensor judge(const std::vector<std::string>& prompts, const std::vector<std::string>& responses,
                      const std::vector<std::string>& answers);
  /// P(yes) after already-rendered judge prompts (the chat template is applied here), batched: [N]
  /// float32. `tokens` (optional) receives the number of judge-prompt tokens forwarded.
  torch::Tensor judge_texts(const std::vector<std::string>& texts, int64_t* tokens = nullptr);
  /// The judge's next-token logits after rendered judge prompts, batched: [N, V] float32 on the CPU.
  torch::Tensor next_logits(const std::vector<std::string>& texts, int64_t* tokens = nullptr);
  /// The last robustness verdict (nullopt before bind or with robustness_suite: none).
  const std::optional<double>& false_positive_rate() const { return fp_rate_; }
  const std::vector<int64_t>& yes_ids() const { return yes_ids_; }
  const std::vector<int64_t>& no_ids() const { return no_ids_; }

 private:
  void load();
  void run_robustness_suite();
  torch::Tensor judge_with(const std::string& tmpl, const std::vector<std::string>& prompts,
                           const std::vector<std::string>& responses, const std::vector<std::string>& answers);

  GenerativeJudgeOptions opt_;
  std::string where_;
  std::optional<models::Transformer> model_;
  std::unique_ptr<models::Tokenizer> tok_;
  std::vector<int64_t> yes_ids_, no_ids_;
  std::optional<double> fp_rate_;
  bool checked_ = false;
};

}  // namespace keel::rewards
