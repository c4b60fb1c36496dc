// Checkpoints of a `keel train` run: what a checkpoint holds (policy — with LoRA merged, plus
// policy_adapter/ and, from random init, policy_base/ —, reference when not loaded from
// model.path, critic, optimizers (whole, also when sharded), trainer_state.json: step counters, data cursor, KL
// controller, estimator state, skipped steps) and the stateful reward's per-scorer states — who
// scores, how the states reach rank 0 (colocated: an all-gather; disaggregated: with the
// checkpoint step's batches), and restoring each scorer's own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace torch::optim {
class AdamW;
}
namespace keel::config {
struct RunConfig;
}
namespace keel::checkpoint {
class CheckpointManager;
}
namespace keel::learner {
class NumericsGuard;
}
namespace keel::dist {
struct BatchMessage;
}

namespace keel::loop {

struct RunState;

/// How many ranks score rows, each holding its own state of a stateful reward: every rank when
/// colocated (one process: 1); the reward ranks, or the rollout ranks when there are none, when
/// disaggregated. INTERPRETATION: a stateful scheme's statistics are per scorer (each sees its
/// share of the rows), like one reward worker per rank; each scorer's state is checkpointed.
int scorer_count(const RunState& s);

/// Whether learner step `s` ends with a checkpoint.
bool checkpoint_step(const config::RunConfig& cfg, int64_t s);

/// A disaggregated scorer: attaches its reward state to the message carrying its (last) scored
/// rows of step `step` when that step ends with a checkpoint.
void attach_reward_state(const RunState& s, dist::BatchMessage& msg, int64_t step);

/// Every scorer's reward state (encoded, by scorer index) for the checkpoint rank 0 is about to
/// write; empty for a stateless reward. Colocated ranks all-gather theirs (a collective: every rank
/// calls it); disaggregated learners take what arrived with the step's batch.
std::vector<std::string> checkpoint_reward_states(RunState& s);

/// With dist.sharding optimizer / gradients / full, every learner rank's part of checkpoint s.step:
/// its optimizer moment shard files (dist::write_moment_shard) in the checkpoint's staging
/// directory, which the lead rank creates first. A collective over the learner ranks (`barrier`
/// synchronises them before and after the writes); returns whether the optimizers are sharded
/// (then save_checkpoint writes no optimizer.pt and keeps the staged shard files).
bool write_optimizer_shards(RunState& s, checkpoint::CheckpointManager& mgr, bool lead,
                            const std::function<void()>& barrier);

/// Writes checkpoint s.step through `mgr` (rank 0). With `optimizer_shards` the optimizers' moments
/// are already staged by every rank (write_optimizer_shards), so the run resumes on any rank count;
/// otherwise optimizer.pt (and critic_optimizer.pt) hold them whole.
/// Returns false, with a warning, when the weights are not finite (nothing is written then).
bool save_checkpoint(RunState& s, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard,
                     const std::vector<std::string>& reward_states, bool optimizer_shards);

/// Loads the models, counters, data cursor, KL controller, estimator and reward state of checkpoint
/// `dir` (the optimizers: make_optimizers(s, dir)).
void load_checkpoint(RunState& s, const std::filesystem::path& dir);

/// Restores this rank's scorer state from checkpoint `dir`, when it scores with a stateful reward.
/// The scorer count must be the one the checkpoint was written with.
void load_reward_state(RunState& s, const std::filesystem::path& dir);

}  // namespace keel::loop
