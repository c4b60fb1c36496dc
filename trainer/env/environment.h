// Environments for multi-turn episodes (agents, tool use): reset(prompt record) -> the first
// observation, step(action text) -> observation, reward, done, info. The multi-turn rollout
// (trainer/env/episodes.h) drives them between the policy's turns; the reward and credit stages
// read what they report (the episode's reward and success, per-turn rewards at turn ends, and the
// named numbers in info: subtask progress, danger bits, citations ...).
// Environments are registered by name (keel list environments) and chosen in YAML under `env:`
// with their `params`. One Environment object serves one episode; an EnvFactory (one per run) makes
// them and must be safe to call from several threads.
// Deliberately not here: the decoding loop, chat-template rendering of observations and the
// subprocess protocol (episodes.h, trainer/env/subprocess_env.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/registry.h"
#include "trainer/data/record.h"
#include "trainer/data/task.h"

namespace keel::config {
class Reader;
}

namespace keel::env {

/// What one step of an episode reports.
struct StepResult {
  /// Text shown to the model before its next turn ("" = nothing); rendered as a tool / user message
  /// with the run's chat template. Ignored when done.
  std::string observation;
  double reward = 0.0;  ///< this turn's reward: placed on the turn's last action token
  bool done = false;    ///< the episode is over (the environment's verdict, not the turn limit)
  /// Named numbers for the reward schemes: each key the factory lists in info_keys() becomes the
  /// [N] tensor RewardInput::extra["<key>"] (its value at the episode's last step) and the per-turn
  /// series extra["<key>_turns"] [N, max_turns]. "success" (0/1) is the episode's correctness.
  std::map<std::string, double> info;
};

class Environment {
 public:
  virtual ~Environment() = default;
  /// Starts the episode of `record`; `seed` is this episode's own (the run seed, the step and the
  /// row), so an episode is reproducible. Returns text shown after the prompt before the first
  /// turn ("" = none).
  virtual std::string reset(const data::PromptRecord& record, uint64_t seed) = 0;
  /// The model's turn, as text (special tokens dropped). Must not throw for any text the model can
  /// write: a malformed action is an observation saying so (counted via info["invalid_action"]).
  virtual StepResult step(const std::string& action) = 0;
  /// What a competent agent would do next in the current state, for SFT warm-up on expert
  /// episodes; nullopt when the environment has no expert.
  virtual std::optional<std::string> expert_action() const { return std::nullopt; }
};

class EnvFactory {
 public:
  virtual ~EnvFactory() = default;
  /// A fresh environment for one episode. Thread-safe.
  virtual std::unique_ptr<Environment> make() const = 0;
  /// The info keys every step reports (see StepResult::info); "success" among them when the
  /// environment judges success.
  virtual std::vector<std::string> info_keys() const = 0;
  /// Metadata fields the environment reads from prompt records (checked against the data at
  /// validate time, as the reward schemes' meta.<key> inputs are).
  virtual std::vector<std::string> required_meta() const { return {}; }
  /// The built-in task whose records this environment is made for ("" = any prompts).
  virtual std::string task() const { return ""; }
  /// Counters of the factory's own (e.g. an external environment's process restarts), reported
  /// as env/<key> each step; running totals.
  virtual std::map<std::string, double> metrics() const { return {}; }
};

/// Reads the environment's knobs from `env.params` (unknown keys are errors with file:line).
using EnvFactoryFn = std::function<std::unique_ptr<EnvFactory>(config::Reader&)>;
using EnvRegistry = Registry<EnvFactoryFn>;

/// Adds the built-in environments (keel list environments) and, under the same names, the tasks
/// whose records they are made for (keel list tasks).
void register_builtin_environments(EnvRegistry& envs, data::TaskRegistry& tasks);

}  // namespace keel::env
