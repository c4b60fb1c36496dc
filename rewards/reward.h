// The reward interface of keel: what every reward scheme (verifier, shaping transform, aggregator,
// process / learned reward) receives and returns, the scheme base class, and the registry type.
// One uniform signature for all schemes: score(RewardInput) -> RewardOutput (STYLE.md §3).
//
// This file deliberately holds no scoring logic: verifiers live in rewards/verifiers/, shaping /
// aggregators / process rewards in rewards/schemes/, composition in composite.h, the thread pool
// with deadlines in scorer.h.
//
// Shape legend (spec/credit-assignment.md §0):
//   N  samples in the batch = prompts × samples_per_prompt
//   T  response tokens (padded)
//   K  criteria / objectives / concept scorers per sample
//   S  steps (or turns) per sample (padded)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "base/contract.h"
#include "base/registry.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

class Scorer;

/// Everything a reward scheme may look at for one batch. Only prompts, responses and group_ids are
/// always filled; every other field is optional (an undefined tensor / empty vector means absent)
/// and a scheme that needs one TORCH_CHECKs it (use the require_* helpers below).
struct RewardInput {
  // ---- always present ---------------------------------------------------------------------------
  std::vector<std::string> prompts;    ///< [N] prompt text as the policy saw it (after the template)
  std::vector<std::string> responses;  ///< [N] decoded response text (special tokens stripped)
  torch::Tensor group_ids;             ///< [N] int64; samples with the same id share a prompt (GRPO group)

  // ---- usually present --------------------------------------------------------------------------
  torch::Tensor response_lengths;  ///< [N] int64, number of valid response tokens (L)
  /// [N] one JSON object per sample: the prompt record's fields beside the prompt, e.g. "answer",
  /// "numbers"/"target" (countdown), "choices", "ref_rewards" (PAR), "gold_answers", "ook" (TruthRL),
  /// "rubric" (criteria with weights / categories), "task_id". Empty vector = no metadata.
  std::vector<nlohmann::json> metadata;

  // ---- optional per-sample signals from models / judges --------------------------------------------
  torch::Tensor rm_scores;         ///< [N] float, raw scalar reward-model / judge score r(x,y)
  torch::Tensor criterion_scores;  ///< [N, K] float, per-criterion verdicts / concept rewards / objectives
  torch::Tensor criterion_mask;    ///< [N, K] bool, true where criterion_scores is valid (absent = all valid)

  // ---- optional step / turn structure ---------------------------------------------------------------
  torch::Tensor step_ends;    ///< [N, S] int64, token index (in the response) of each step's last token; -1 = padding
  torch::Tensor step_scores;  ///< [N, S] float, per-step scores (PRM probabilities, step critics, danger bits ...)
  torch::Tensor step_mask;    ///< [N, S] bool, true for real steps (absent = derived from step_ends >= 0)

  // ---- optional per-token information ---------------------------------------------------------------
  torch::Tensor response_tokens;  ///< [N, T] int64 response token ids
  torch::Tensor response_mask;    ///< [N, T] bool / float, 1 on valid response tokens
  torch::Tensor token_logprobs;   ///< [N, T] float, behaviour log-probs of the sampled tokens

  // ---- composition and everything else ---------------------------------------------------------------
  /// [N] rewards of the components evaluated earlier in the same CompositeReward, by component
  /// name (e.g. a gate reads the verifier's "accuracy"). Filled by CompositeReward.
  std::map<std::string, torch::Tensor> prior;
  /// [N] float: the earlier components' rewards summed (the signal spec "prior"), what a shaping
  /// transform listed after the verifiers shapes by default. Unweighted: a component's weight scales
  /// its share of the run's total only, so a verifier at weight 0 (shaped, not added) still feeds
  /// the transform. Filled by CompositeReward.
  torch::Tensor prior_total;
  /// [N] bool: the correctness the earlier components reported (RewardOutput::correct, AND over
  /// those that report one; the signal spec "correct"). Undefined until a verifier has run.
  torch::Tensor correct;
  /// Further named tensors with leading dimension N (e.g. "multi_rm" [N, K], "ref_rewards" [N, M]).
  std::map<std::string, torch::Tensor> extra;
  int64_t step = 0;  ///< training step (for schedules such as a decaying κ); 0 outside training

  /// N (the number of responses).
  int64_t size() const { return static_cast<int64_t>(responses.size()); }
  /// The metadata of sample i, or a shared empty JSON object when there is no metadata.
  const nlohmann::json& meta(int64_t i) const;
  /// TORCH_CHECKs the always-present fields: prompts/responses/group_ids sizes agree, metadata is
  /// empty or [N], optional tensors have leading dimension N. Called by CompositeReward.
  void check() const;
};

/// TORCH_CHECKs that an optional field is defined and has leading dimension N, naming `scheme`.
void require_tensor(const RewardInput& in, const torch::Tensor& t, const char* field, const std::string& scheme);
/// TORCH_CHECKs that metadata is present and every sample has `key`, naming `scheme`.
void require_metadata(const RewardInput& in, const std::string& key, const std::string& scheme);

/// What a scheme returns.
struct RewardOutput {
  torch::Tensor rewards;        ///< [N] float32, sequence-level reward (put on the last token by the learner)
  /// [N, T] float32, optional dense per-token rewards (undefined = none), added by the learner on top of
  /// `rewards` (which it places on the last valid token); e.g. PRM step scores at step ends.
  torch::Tensor token_rewards;
  /// [N] bool: whether each response is correct, from schemes that judge correctness (the task /
  /// answer verifiers); undefined for the others. One flag that evaluation, the dynamic-sampling
  /// filter, accuracy metrics and correctness-reading schemes and estimators all read.
  torch::Tensor correct;
  /// The judge stage's step structure when a judge wrote one (a prm judge): per-step scores and
  /// step-end token indices [N, S] (−1 padding), for the credit stage (SS-GRPO's stages); undefined
  /// otherwise.
  torch::Tensor step_scores, step_ends;
  /// [N, G] float: a pairwise judge's P(row i ≻ the j-th row of i's group, batch order), both orders
  /// asked (a pairwise judge with output pair_judge); for the estimators' pairwise judge
  /// (spo_winrate, arena_rank). Undefined otherwise.
  torch::Tensor pair_prefs;
  /// Per-component detail, [N] each (e.g. "format", "accuracy", "cost", "judge_failed"); CompositeReward
  /// re-exports them as "<component>/<key>".
  std::map<std::string, torch::Tensor> detail;
  /// Scalars for logging, under namespaced keys ("scorer/timeouts", "par/mean_refs"). CompositeReward
  /// prefixes them with "reward/<component>/" except "scorer/*", which it sums across components.
  std::map<std::string, double> metrics;
  /// The first message of each kind of failure in this batch, by kind ("error": a verifier threw or
  /// returned a non-finite value; "timeout"; "malformed": a text no verifier was asked about), for
  /// the trainer to log once per kind. CompositeReward keys them "<component>/<kind>".
  std::map<std::string, std::string> failures;
};

/// Checkpointable state of a stateful scheme (running mean/std, min/max, per-task history, EMA
/// baselines, Lagrange multipliers ...). Keys are chosen by the scheme; values are CPU tensors.
using RewardState = std::map<std::string, torch::Tensor>;

/// Services a scheme may use, handed over by CompositeReward after construction.
struct RewardContext {
  Scorer* scorer = nullptr;  ///< shared rule-based scorer (thread pool + deadline + fallback); may be null
  /// A few of the run's prompts (as the policy sees them) and their answers, for a generative
  /// judge's master-key self-test with robustness_probes: run; may be empty.
  std::vector<std::pair<std::string, std::string>> probes;
};

/// Base class of every reward scheme. Built by a RewardFactory from the component's params.
class RewardScheme {
 public:
  virtual ~RewardScheme() = default;

  /// Scores one batch. Non-const: stateful schemes update their statistics here (once per call).
  virtual RewardOutput score(const RewardInput& in) = 0;

  /// Whether save_state/load_state carry anything (spec §0 rule 2: stateful transforms are checkpointed).
  virtual bool stateful() const { return false; }
  /// Writes the scheme's state; keys are local to the scheme (the composite namespaces them).
  virtual void save_state(RewardState& out) const { (void)out; }
  /// Restores what save_state wrote; a missing key is an error (keel::fail naming it).
  virtual void load_state(const RewardState& in) { (void)in; }

  /// Receives shared services (called once by CompositeReward before the first score()).
  virtual void bind(const RewardContext& ctx) { (void)ctx; }
};

/// Builds a scheme from its YAML params, read field by field through the Reader (so unknown keys,
/// type errors and range errors are reported with file:line and YAML path). The factory must not
/// throw for bad params: it records them in the Reader and returns a scheme (possibly built from
/// defaults); the caller throws all collected errors together.
using RewardFactory = std::function<std::unique_ptr<RewardScheme>(config::Reader& params)>;

/// What the rest of keel knows about a registered scheme without building it.
struct RewardTraits {
  bool judges_correctness = false;  ///< reports RewardOutput::correct (a task / answer verifier)
};
using RewardRegistry = Registry<RewardFactory, RewardTraits>;

/// Declares, while a scheme's factory runs, an input the built scheme will require from the batch
/// (vocabulary: base/contract.h), under the YAML path of `param` inside the params reader ("" = the
/// component's params as a whole). Every factory declares exactly what its score() will check for,
/// given its parameters; read_signal (schemes/register_util.h) declares signal-spec parameters
/// itself. Outside build_scheme this does nothing.
void require_input(config::Reader& params, const std::string& input, const std::string& param = "");

/// Runs `fn` (a factory), returning the require_input calls made inside it.
Contract record_requirements(const std::function<void()>& fn);

/// A scheme built from its params, with the contract its factory declared.
struct BuiltScheme {
  std::unique_ptr<RewardScheme> impl;
  Contract contract;
};
/// Runs the registered factory of `scheme` on `params`, recording its require_input calls.
BuiltScheme build_scheme(const RewardRegistry& registry, config::Reader& params, const std::string& scheme);

/// Registers the rule-based verifiers (rewards/verifiers/): math_answer, match_exact,
/// match_normalized, match_choice, format_regex, format_tags, task_arithmetic, task_countdown.
void register_builtin_rewards(RewardRegistry& reg);
/// Registers the shaping transforms, aggregators and process rewards (rewards/schemes/, groups A–C
/// of spec/rewards.md). Defined in rewards/schemes/; call it beside register_builtin_rewards.
void register_builtin_reward_schemes(RewardRegistry& reg);
/// Registers the learned rewards that score at run time (rewards/models/, spec group D):
/// reward_model and generative_yes. Defined in rewards/models/register.cpp; call it beside the two above.
void register_builtin_reward_models(RewardRegistry& reg);

}  // namespace keel::rewards
