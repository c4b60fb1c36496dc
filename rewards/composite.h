// CompositeReward — the reward of a run: a weighted sum of named components, each a registered
// scheme built from the `reward.components` config section (trainer/config/reward_config.h).
//
//   reward.components:
//     - {scheme: format_tags, name: format, weight: 0.1}
//     - {scheme: math_answer, name: accuracy, weight: 1.0, params: {answer_key: answer}}
//
//   rewards[i] = Σ_c weight_c · rewards_c[i]            token_rewards likewise (where a component has them)
//
// Components are scored in config order; each later component sees the earlier ones' [N] rewards in
// RewardInput::prior under their names (so a gate can read "accuracy"), their unweighted sum in
// RewardInput::prior_total (the signal "prior", what shaping transforms read by default), and the
// correctness the verifiers among them reported in RewardInput::correct (AND over them; the signal
// "correct"). The output's `correct` is that AND over every component that reports one. Metrics:
// reward/<name>/{mean,std,min,max}, reward/total/{mean,std,min,max}, the component's own metrics
// under reward/<name>/... (a verifier's reward/<name>/error_share: the share of its calls that
// threw or timed out), scorer/{timeouts,errors,malformed} summed over components, and
// scorer/stuck_workers (threads ever retired by the shared scorer, a gauge). Each component's first
// failure message of each kind lands in RewardOutput::failures as "<name>/<kind>".
//
// The run's judges (reward.judges, rewards/judges/judge.h) run first, on a copy of the input, and
// the components read what they wrote (criterion_scores, step_scores, rm_scores, extra.<key>);
// their metrics are judge/<name>/... .
// Not here: gating rules between components (a scheme's job: see rewards/schemes/).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rewards/judges/judge.h"
#include "rewards/reward.h"
#include "rewards/scorer.h"
#include "rewards/reward_spec.h"

namespace keel::rewards {

class CompositeReward : public RewardScheme {
 public:
  struct Component {
    std::string name;    ///< metric / state / prior key (the config's name, default the scheme)
    std::string scheme;  ///< registered scheme name
    double weight = 1.0;
    std::unique_ptr<RewardScheme> impl;
    Contract contract;  ///< the inputs its factory declared (require_input)
  };

  /// Takes the components and the options of the shared rule-based scorer it hands to them (bind),
  /// and the judges (rewards/judges/judge.h), bound with `judge_ctx`, that run before them.
  CompositeReward(std::vector<Component> components, const ScorerOptions& scorer_options,
                  std::vector<BuiltJudge> judges = {}, const JudgeContext& judge_ctx = {});

  RewardOutput score(const RewardInput& in) override;
  bool stateful() const override;
  /// Keys are "<component name>/<scheme's key>".
  void save_state(RewardState& out) const override;
  void load_state(const RewardState& in) override;

  const std::vector<Component>& components() const { return components_; }
  const std::vector<BuiltJudge>& judges() const { return judges_; }
  Scorer& scorer() { return *scorer_; }

 private:
  std::vector<BuiltJudge> judges_;
  std::vector<Component> components_;
  std::unique_ptr<Scorer> scorer_;
};

/// Builds the run's reward from its config section. Each component's params are read through a
/// config::Reader at params_path, so a missing, unknown or ill-typed parameter is reported with its
/// file:line and YAML path; an unknown scheme names reward.components.<i>.scheme and lists the known
/// ones; a duplicate component name is an error. All errors are thrown together as one keel::Error.
/// With no components, `default_scheme` (the task's own verifier, e.g. "task_countdown") is used
/// with default params, weight 1; an empty default then is an error.
/// The judges of reward.judges are built the same way (unknown type at reward.judges.<i>.type) and
/// bound with `judge_ctx` (their models load then).
std::unique_ptr<CompositeReward> build_composite_reward(const RewardSpec& section,
                                                        const RewardRegistry& registry,
                                                        const std::string& default_scheme = "",
                                                        const JudgeContext& judge_ctx = {});

/// Builds one scheme from a params Reader and discards it: the hook behind
/// config::KnownNames::reward_params, so `keel validate` checks scheme parameters at load.
void validate_reward_params(const RewardRegistry& registry, config::Reader& params, const std::string& scheme);

/// A component's name, scheme, YAML path and declared contract — what the run's contract check
/// resolves (trainer/loop/contracts.h), without keeping the schemes.
struct ComponentContract {
  std::string name;
  std::string scheme;
  std::string path;  ///< "reward.components.<i>"
  Contract contract;
  bool judges_correctness = false;  ///< the scheme reports RewardOutput::correct
};
/// The contracts of the run's components (the task default when there are none), in order.
/// Components with unknown schemes or bad params are skipped: the loader reports those.
std::vector<ComponentContract> reward_contracts(const RewardSpec& section, const RewardRegistry& registry,
                                                const std::string& default_scheme = "");

/// "reward/<name>/mean", "/std" (population), "/min", "/max" of an [N] tensor into `metrics`.
void add_summary_metrics(const std::string& prefix, const torch::Tensor& values, std::map<std::string, double>& metrics);

}  // namespace keel::rewards
