// The multi-turn rollout: every row of the batch (prompt x sample) plays one episode of an
// environment. The policy samples a turn (until its end-of-turn token, a stop token or
// rollout.max_new_tokens) on the KV-cache DecodeSession; the turn's text goes to the environment
// (on the shared pool, under the step deadline); its observation is rendered with the chat
// template's tool / user turn (models::render_observation) and appended to the same cache; until
// the environment says done, env.max_turns, or the episode's token budget.
// In the RolloutBatch the response holds the whole conversation after the prompt: the policy's
// tokens (response_mask 1, turn_ids = the turn) and the observations (response_mask 0, turn_ids −1,
// old log-prob 0), all of it in response_attention — what the learner attends to. Per turn: the
// environment's reward, its info values and the id of the observation it returned (ONI's message).
// An environment that throws or overruns the deadline ends its episode as failed (env_failed = 1,
// counted), never stalls the step; the others go on.
// Deliberately not here: the environments (trainer/env/envs/), their rewards' use (the "env" reward
// scheme and the credit stage), SFT on expert episodes (expert_episode below is what it encodes).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/env/environment.h"
#include "trainer/rollout/rollout.h"

namespace keel::rewards {
class Scorer;
}

namespace keel::env {

struct EpisodeOptions {
  int max_turns = 4;
  int64_t max_tokens = 256;              ///< response-side budget: the policy's turns and observations
  std::string observation_role = "tool";  ///< tool | user
  bool reuse_kv = true;                  ///< false: the cache is recomputed at every turn (baseline)
};

/// The info keys a batch carries: the factory's, then "env_failed" (1 where the environment failed).
std::vector<std::string> episode_info_keys(const EnvFactory& f);

/// A stable id of an observation text (RolloutBatch::env_turn_message_ids), for ONI's per-episode
/// message counts N(m_t) (Zheng et al., arXiv 2410.23022): the text's XXH64 folded to 53 bits, so the
/// id survives the float64 the reward schemes read their signals as. Equal texts, equal ids; the
/// same on every rank and run. Two texts share an id with probability ~2^-53.
int64_t message_id(const std::string& text);

struct EpisodeStats {
  int64_t episodes = 0;
  int64_t turns = 0;               ///< policy turns played
  int64_t policy_tokens = 0;
  int64_t observation_tokens = 0;
  int64_t forwarded_tokens = 0;    ///< tokens run through the model (DecodeSession::forwarded_tokens)
  int64_t env_timeouts = 0;        ///< environment calls past the deadline (their episodes failed)
  int64_t env_errors = 0;          ///< environment calls that threw (their episodes failed)
  std::string first_error;
  std::map<std::string, int64_t> endings;  ///< done | max_turns | budget | env_failed
  std::map<std::string, double> info_sums;  ///< per info key: Σ over turns played (e.g. tool calls, hazards)
  std::map<std::string, double> info_last;  ///< per info key: Σ over episodes of its value at the last step
  double decode_s = 0, env_s = 0;
  /// Adds env/* metrics (turns per episode, timeouts, errors, observation share, endings, each
  /// info key's per-episode sum over its turns as env/per_episode/<key> — for per-turn counters —
  /// and its mean final value as env/last/<key> — for states such as subtasks_completed), time/env_s and
  /// perf/episode_tokens_per_s.
  void add_metrics(std::map<std::string, double>& m) const;
};

/// Plays samples_per_prompt episodes of each prompt (group id = the prompt's index). `pool` runs
/// the environment calls (its deadline is the step deadline). Row i's episode is seeded from
/// (ro.seed, ro.first_row + i) — environment and sampler alike — so chunking and ranks do not change it.
rollout::RolloutBatch run_episodes(models::Transformer& policy, const models::Tokenizer& tok, const EnvFactory& envs,
                                   rewards::Scorer& pool, const std::vector<data::PromptRecord>& prompts,
                                   const rollout::RolloutOptions& ro, const EpisodeOptions& eo,
                                   EpisodeStats* stats = nullptr);

/// The expert's play of `record` in a fresh environment (reset with `seed`): its actions and each
/// step's result, until done, `max_turns`, or a state with no expert action (expert = false).
struct ExpertPlay {
  std::string first;  ///< reset's first observation
  std::vector<std::string> actions;
  std::vector<StepResult> steps;  ///< [actions] what each action returned
  bool expert = true;
  bool success() const;  ///< the last step was done with info success > 0.5
};
ExpertPlay play_expert(const EnvFactory& envs, const data::PromptRecord& record, uint64_t seed, int max_turns);

/// One expert episode of `record` (Environment::expert_action until done or max_turns), encoded as
/// a multi-turn rollout encodes it: prompt ids, then response ids with the mask of the policy's
/// tokens (each expert turn followed by the end-of-turn token) and the observations. Throws when
/// the environment has no expert or the expert does not finish within max_turns / max_tokens.
struct ExpertEpisode {
  std::vector<int64_t> prompt;
  std::vector<int64_t> response;
  std::vector<int64_t> mask;  ///< 1 on the expert's tokens
  bool success = false;
};
/// The expert episode as text, for training a run's tokenizer: the rendered prompt, then each
/// expert action and rendered observation. Falls back to "" past the point the expert stops.
std::string expert_transcript(const EnvFactory& envs, const data::PromptRecord& record, uint64_t seed,
                              const models::ChatTemplate& chat_template, const EpisodeOptions& eo);
ExpertEpisode expert_episode(const models::Tokenizer& tok, const EnvFactory& envs, const data::PromptRecord& record,
                             uint64_t seed, const models::ChatTemplate& chat_template, const EpisodeOptions& eo);

}  // namespace keel::env
