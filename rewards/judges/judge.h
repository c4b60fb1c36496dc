// The judge stage: learned models that read the rollout batch and write the per-response signals
// model-based reward schemes consume — per-criterion verdicts (rubric, pow3r, cmo, directional),
// a verdict flag (truthrl's judge_correct), per-step scores at step ends (prm, gated, ssl), scalar
// reward-model scores (rm_scores, uncertainty's second evaluation). verl and OpenRLHF run such
// models as separate reward-model workers; here they are listed under `reward.judges`, run in
// CompositeReward::score before the components, batched and without grad, on the device the run
// hands them (the learner's, or a reward rank's under dist.placement disaggregated).
//
//   reward:
//     judges:
//       - {name: rubric_judge, type: yes_no, params: {path: runs/judge/final, criteria: [...]}}
//     components:
//       - {scheme: rubric}
//
// Every judge declares what it produces (signals in the contract vocabulary, base/contract.h) from
// its params alone, so `keel validate` resolves the components' requirements against them without
// loading a model; what a judge itself requires (meta.answer for a template with {answer}) is
// declared with rewards::require_input like a scheme's.
// Bad outputs never reach training silently: a non-finite score, or a judge past its deadline,
// takes the judge's documented fallback and is counted (judge/<name>/invalid, judge/<name>/timeouts).
//
// Shape legend: N responses, K criteria, S steps, T response tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/contract.h"
#include "base/registry.h"
#include "rewards/models/master_keys.h"
#include "rewards/reward.h"
#include "rewards/reward_spec.h"

namespace keel::models {
class Tokenizer;
}

namespace keel::rewards {

/// What the run hands its judges at start-up.
struct JudgeContext {
  /// The policy's tokenizer (step segmentation reads the response tokens with it); may be null for
  /// judges that only read texts.
  const models::Tokenizer* policy_tokenizer = nullptr;
  at::Device device = at::kCPU;  ///< where judge weights live
  /// A few of the run's prompts (as the policy sees them) with their answers: the master-key
  /// suite's questions for a judge with robustness_probes: run.
  std::vector<MasterKeyProbe> probes;
};

/// Counters of one judge call, turned into metrics by the stage.
struct JudgeStats {
  int64_t prompts = 0;   ///< judge prompts scored (N × K, or one per step)
  int64_t tokens = 0;    ///< judge-prompt tokens forwarded
  int64_t invalid = 0;   ///< non-finite scores replaced by the fallback
  int64_t timeouts = 0;  ///< judge prompts given the fallback because the judge ran past its deadline
  double mean = 0;       ///< mean of the valid scores it wrote
};

class Judge {
 public:
  virtual ~Judge() = default;
  /// Loads weights and runs start-up self-tests (the master-key suite of generative judges).
  virtual void bind(const JudgeContext& ctx) = 0;
  /// Scores the batch and writes its outputs into `in` (criterion_scores, step_scores, extra[...]).
  virtual JudgeStats run(RewardInput& in) = 0;
  /// The signals it writes (contract vocabulary), known from the params alone.
  virtual std::vector<std::string> produces() const = 0;
};

/// Builds a judge from its params (read through the Reader: unknown keys, bad values reported with
/// file:line); must not load a model. `name` is the judge's name (its metrics prefix).
using JudgeFactory = std::function<std::unique_ptr<Judge>(config::Reader& params, const std::string& name)>;
using JudgeRegistry = Registry<JudgeFactory>;

/// yes_no, prm, gold_answer and reward_model (rewards/judges/builtin.cpp).
void register_builtin_judges(JudgeRegistry& reg);
/// The built-in judge types, registered once.
const JudgeRegistry& builtin_judges();

/// A built judge with what its factory declared it requires.
struct BuiltJudge {
  std::string name;
  std::string type;
  std::unique_ptr<Judge> impl;
  Contract contract;  ///< its own requirements (require_input during the factory)
};
BuiltJudge build_judge(const JudgeRegistry& registry, config::Reader& params, const std::string& type,
                       const std::string& name);

/// A judge's name, YAML path, requirements and outputs — for the run's contract check.
struct JudgeContract {
  std::string name;
  std::string type;
  std::string path;  ///< "reward.judges.<i>"
  Contract contract;
  std::vector<std::string> produces;
};
/// The contracts of the run's judges, in order (unknown types and bad params skipped: the loader
/// reports those).
std::vector<JudgeContract> judge_contracts(const RewardSpec& section, const JudgeRegistry& registry = builtin_judges());

/// Runs the judges in order on `in`, each seeing the signals of the ones before; metrics
/// judge/<name>/{prompts,tokens,invalid,timeouts,mean}, time/judge/<name>_s,
/// perf/judge/<name>/tokens_per_s and time/judge_s (all judges).
void run_judges(std::vector<BuiltJudge>& judges, RewardInput& in, std::map<std::string, double>& metrics);

/// Parses a judge output spec: criterion_scores | rm_scores | step_scores | extra.<key>; reports a
/// bad one at `key` of `r`. Returns whether it is well-formed.
bool check_judge_output(config::Reader& r, const std::string& key, const std::string& spec,
                        const std::vector<std::string>& allowed);

/// Writes an [N] or [N, K] float tensor into the field `spec` names (as check_judge_output accepts).
void write_judge_output(RewardInput& in, const std::string& spec, const torch::Tensor& values);

}  // namespace keel::rewards
