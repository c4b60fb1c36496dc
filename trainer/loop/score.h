// Stage score: the composite reward on a RolloutBatch. Reads the batch's texts, tokens, masks,
// behaviour log-probs, group ids and records (each record's answer + meta as JSON metadata);
// returns the reward's whole RewardOutput (sequence rewards, dense token rewards, correctness,
// per-component detail, metrics) — the caller decides which parts it writes into the batch.
// Also: the reward metrics of several ranks combined, and the guard that keeps evaluation from
// touching a stateful reward's state.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "rewards/composite.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::dist {
class Communicator;
}

namespace keel::loop {

/// RewardInput of a batch: texts, groups, lengths, and each record's answer + meta as JSON.
rewards::RewardInput reward_input(const rollout::RolloutBatch& b, int64_t step);

/// A multi-turn batch's environment outputs as reward inputs: extra[<key>] [N] (each info key's
/// value at the episode's last step) and extra[<key>_turns] [N, T], extra.env_turn_rewards [N, T],
/// extra.env_return [N] (their sum), and step_ends [N, T] = each turn's last policy token. For ONI:
/// extra.env_rewards [N, T] (= env_turn_rewards) and extra.message_ids [N, T] int64 (each turn's
/// observation id, env::message_id).
void add_episode_inputs(const rollout::RolloutBatch& b, rewards::RewardInput& in);

/// The reward's output for the rows of `b` at learner step `step`.
rewards::RewardOutput score(rewards::CompositeReward& reward, const rollout::RolloutBatch& b, int64_t step);

/// Writes a reward's output into the batch: b.rewards, b.correct (1 / 0; undefined when no component
/// judges correctness), b.token_rewards (the dense per-token terms, when a component has them) and
/// b.step_scores / b.step_end_mask (a judge's steps, when one cut them).
void write_scores(rollout::RolloutBatch& b, const rewards::RewardOutput& out);

/// The reward scorer's metrics of several ranks' rows (equal rows per rank) merged: means averaged,
/// min / max over ranks, std pooled (sqrt of the mean of std² + mean² minus the global mean²), scorer
/// counts summed. Every map must have the keys of the first.
metrics::Metrics combine_reward_metrics(const std::vector<metrics::Metrics>& ranks);

/// combine_reward_metrics over the ranks of `comm` (colocated placement). The key sets must match
/// across ranks (all_reduce_metrics checks that first).
void reduce_reward_metrics(dist::Communicator& comm, metrics::Metrics& m);

/// Makes a broken verifier loud (reward.warn_error_share, reward.max_all_error_steps): each
/// component's first message of each kind of failure is logged once; a step where a component's
/// verifier failed (threw, or ran past the deadline) on more than warn_error_share of its calls
/// warns; max_all_error_steps steps in a row where it failed on all of them stop the run. Without
/// this a verifier failing on every sample trains on the fallback reward in silence.
class ScoreWatch {
 public:
  /// max_all_error_steps 0 = never stop.
  explicit ScoreWatch(double warn_error_share = 0.25, int max_all_error_steps = 3);

  /// Logs each "<component>/<kind>" of out.failures not logged before: a warning with its message
  /// (information only for malformed texts, which are the policy's, not the verifier's).
  void log_failures(const rewards::RewardOutput& out);

  /// One step's reward metrics, every rank's combined (reward/<component>/error_share, a mean over
  /// equal shares of rows): warns above warn_error_share, and throws keel::Error naming the
  /// component, the steps and its first error after max_all_error_steps steps in a row at 100%.
  void check_step(int64_t step, const metrics::Metrics& reward_metrics);

 private:
  double warn_error_share_;
  int max_all_error_steps_;
  std::set<std::string> logged_;                    ///< failure keys already logged
  std::map<std::string, std::string> first_error_;  ///< component -> its first error / timeout message
  std::map<std::string, int> all_error_run_;        ///< component -> steps in a row at 100%
  struct Warned {
    int64_t last_above = -1;   ///< the last step above warn_error_share
    int64_t last_warned = -1;  ///< the step of the last warning
  };
  std::map<std::string, Warned> warned_;  ///< by component
};

/// Evaluation scores with the training reward but must leave no trace in it: a stateful scheme
/// (running statistics, ONI's online models and label caches) is put back, for the rest of the run
/// and its checkpoints, to the state it had when this guard was made.
class RewardStateRestorer {
 public:
  explicit RewardStateRestorer(rewards::CompositeReward* r);
  ~RewardStateRestorer();
  RewardStateRestorer(const RewardStateRestorer&) = delete;
  RewardStateRestorer& operator=(const RewardStateRestorer&) = delete;

 private:
  rewards::CompositeReward* reward_;
  rewards::RewardState saved_;
};

}  // namespace keel::loop
