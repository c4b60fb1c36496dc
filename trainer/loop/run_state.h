// The state of a `keel train` job that every stage reads: the config, the models, optimizers, data,
// reward, estimator and losses built from the registries, the counters a checkpoint saves, and the
// ranks (data-parallel communicator, disaggregated placement and role). Built in this order by
// train() (trainer/loop/train.cpp): init_ranks -> resolve_device -> build_components ->
// build_models -> make_optimizers -> set_update_options. A test builds it for one process the same
// way (tests/trainer/loop/step_test.cpp).
// Deliberately not here: the stages that run on it (the other files of trainer/loop/).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/model_config.h"
#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/composite.h"
#include "rewards/scorer.h"
#include "trainer/config/config.h"
#include "trainer/credit/advantage.h"
#include "trainer/data/prompt_source.h"
#include "trainer/data/task.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/placement.h"
#include "trainer/dist/weight_sync.h"
#include "trainer/env/episodes.h"
#include "trainer/learner/data_parallel_hooks.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/rl_update.h"
#include "trainer/loop/contracts.h"
#include "trainer/loop/registries.h"
#include "trainer/loop/score.h"

namespace torch::optim {
class AdamW;
}

namespace keel::loop {

struct RunState {
  RunState();
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  config::RunConfig cfg;
  std::string resolved_yaml;
  std::filesystem::path run_dir;
  std::string algorithm;  ///< learner.algorithm
  std::unique_ptr<models::Tokenizer> tok;
  std::string tokenizer_dir;  ///< copied into checkpoints
  /// model.chat_template resolved (the model directory's own Jinja template under auto / model).
  models::ChatTemplate chat_template{"plain"};
  std::optional<models::Transformer> policy;
  std::optional<models::Transformer> reference;
  /// PPO with critic.mode separate: its own model and optimizer (value_head: the policy's head).
  std::optional<models::Transformer> critic;
  std::unique_ptr<torch::optim::AdamW> optimizer;  ///< dist.sharding optimizer: a dist::ShardedAdamW
  std::unique_ptr<torch::optim::AdamW> critic_optimizer;
  std::optional<data::PromptSource> data;
  std::unique_ptr<rewards::CompositeReward> reward;
  ScoreWatch score_watch;  ///< the reward's failures (reward.warn_error_share, reward.max_all_error_steps)
  int64_t data_rejected_seen = 0;  ///< data->rejected() when last reported (trainer/loop/fit_data.h)
  bool data_warned_drawn = false;  ///< a drawn task problem was skipped as too long, and said so
  // ---- multi-turn episodes (env.name set; null otherwise) ----
  std::unique_ptr<env::EnvFactory> env;
  std::unique_ptr<rewards::Scorer> env_pool;  ///< runs the environment calls under env.step_timeout_s
  env::EpisodeOptions episode;
  credit::AdvantageFn estimator;
  credit::AdvantageOptions adv_opts;
  learner::PolicyLossFn loss_fn;
  learner::DpoLossFn dpo_fn;
  learner::DpoOptions dpo_opts;
  learner::RlUpdateOptions update;
  std::optional<learner::KlController> kl_ctl;
  credit::EstimatorState est_state;
  int64_t step = 0;             ///< learner steps completed
  int64_t opt_step = 0;         ///< optimizer steps taken
  int64_t loaded_skipped_steps = 0;  ///< the numerics guard's count in the last checkpoint loaded
  int64_t critic_opt_step = 0;  ///< separate critic's optimizer steps
  const Registries& reg = registries();  ///< the one registry set (model families load checkpoints through it)
  // ---- data-parallel ranks (colocated) ----
  std::unique_ptr<dist::Communicator> comm;  ///< null in a single process
  learner::DataParallelHooks dp_hooks;
  int rank = 0;   ///< index among the ranks sharing this rank's work (colocated: world rank)
  int world = 1;  ///< how many share it (colocated: world size; disaggregated: ranks of the role)
  // ---- disaggregated placement (null / unset when colocated) ----
  std::optional<dist::Placement> placement;
  dist::Role role = dist::Role::kLearner;
  int global_rank = 0;
  std::unique_ptr<dist::Communicator> world_comm;  ///< every rank: batches travel point to point
  std::unique_ptr<dist::Communicator> sync_comm;   ///< {learner 0} + rollout ranks: weight broadcast
  dist::WeightSyncBuffers sync_buffers;
  int64_t dropped_stale_total = 0;  ///< rows dropped as too stale since this process started
  /// Learner 0: the last weight broadcast, reported with the next step (whose batch it sampled,
  /// when synchronous).
  std::optional<dist::WeightSyncStats> last_sync;
  /// Learner 0: the scorers' reward states (encoded, by scorer index) that arrived with this
  /// step's batch, for its checkpoint (stateful rewards, checkpoint steps).
  std::vector<std::string> scorer_states;
  // ---- where the models compute (run.device, model.dtype) ----
  at::Device device = at::kCPU;
  std::optional<at::ScalarType> autocast;  ///< CUDA autocast dtype; nullopt = fp32

  bool is(const char* a) const { return algorithm == a; }
  /// The learner's registry traits (trainer/learner/learners.h).
  const learner::LearnerTraits& learner_traits() const { return reg.learners.get(algorithm).traits; }
  /// Trains a critic (ppo).
  bool ppo() const { return learner_traits().critic; }
  /// Assigns credit with advantage.estimator (grpo, ppo).
  bool rl() const { return learner_traits().estimator; }
  /// Learners that sample from the policy each step.
  bool samples() const { return learner_traits().samples || (is("dpo") && cfg.dpo.online); }
  /// The estimator's registry traits.
  const credit::EstimatorTraits& estimator_traits() const { return reg.estimators.get(cfg.advantage.estimator).traits; }
  /// Whether the estimator reads `input` (base/contract.h vocabulary; its option-dependent inputs
  /// included).
  bool needs_input(const std::string& input) const {
    if (!rl()) return false;
    const auto in = estimator_traits().inputs_for(adv_opts);
    return std::find(in.begin(), in.end(), input) != in.end();
  }
  /// Whether the estimator reads ReMax's greedy baselines.
  bool greedy_baselines() const { return needs_input("greedy_baselines"); }
  /// Whether the learner needs the frozen reference model (a KL term, DPO).
  bool uses_reference() const { return loop::uses_reference(cfg); }
  /// The critic model: the policy (value head) or the separate critic.
  models::Transformer* critic_model() {
    if (!ppo()) return nullptr;
    return critic ? &*critic : &*policy;
  }
};

/// The learner / world-size combinations `keel train` runs (errors name the config `config_name`);
/// then, with several ranks (s.world > 1), the rendezvous: communicators, placement, role, rank.
void init_ranks(RunState& s, const std::string& config_name);

/// run.device and model.dtype resolved: auto = CUDA (this rank's LOCAL_RANK-th GPU) when usable,
/// else CPU; on CUDA, dtype auto / bfloat16 = bf16 autocast over fp32 parameters (verl, OpenRLHF
/// and TRL train in bf16 mixed precision), float32 = plain fp32. CPU computes in fp32 only.
void resolve_device(RunState& s, int local_rank);

/// From the registries and the config: data, the run tokenizer (`lead` trains it when one is
/// trained; the others load it after `barrier`), reward, estimator, policy and DPO losses, KL
/// controller. Reads s.cfg, s.run_dir.
void build_components(RunState& s, const rewards::RewardRegistry& reward_schemes, bool lead,
                      const std::function<void()>& barrier);

/// Policy, reference and critic: learners from `resume` when given, else model.path, else a random
/// init; reward ranks hold none. Placed on s.device with activation checkpointing as configured.
void build_models(RunState& s, const std::optional<std::filesystem::path>& resume);

/// Moves every model to s.device and sets its autocast dtype (after a load or a rollback).
void place_models(RunState& s);

/// Every data-parallel rank takes rank 0's weights (bit-exact; a seeded init or the same checkpoint
/// already agree — this makes it a guarantee). No-op in a single process.
void replicate_models(RunState& s);

/// The optimizers of the policy (and a separate critic), from a checkpoint directory when given.
void make_optimizers(RunState& s, const std::optional<std::filesystem::path>& checkpoint);

/// s.update from the batch, optim, rollout and learner sections.
void set_update_options(RunState& s);

}  // namespace keel::loop
