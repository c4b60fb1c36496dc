#include "trainer/loop/train.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>

#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "base/stop_signal.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/cli/system_info.h"
#include "trainer/cli/train_common.h"
#include "trainer/dist/rendezvous.h"
#include "trainer/dist/sharded_adamw.h"
#include "trainer/dist/sharded_model.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/loop/checkpoint_io.h"
#include "trainer/loop/disaggregated.h"
#include "trainer/loop/evaluate.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/step.h"
#include "trainer/loop/stop.h"
#include "trainer/loop/sync.h"
#include "trainer/loop/update.h"
#include "trainer/metrics/metrics.h"

namespace keel::loop {

using cli::seconds_since;
using metrics::Metrics;

namespace {

namespace stdfs = std::filesystem;

/// A checkpoint chosen by `find` on member 0 of `comm` only — verifying one reads every byte of it
/// — and handed to the other members: a step directory of `mgr` by its step, any other directory
/// as `explicit_dir` (run.resume's), or none. Without `comm` (one process) just find().
std::optional<stdfs::path> decided_by_first_rank(dist::Communicator* comm, const checkpoint::CheckpointManager& mgr,
                                                 const std::function<std::optional<stdfs::path>()>& find,
                                                 const std::string& explicit_dir) {
  const bool first = !comm || comm->rank() == 0;
  std::optional<stdfs::path> found;
  if (first) found = find();
  if (!comm || comm->size() == 1) return found;
  int64_t kind = 0, step = 0;  // 0 none, 1 mgr's step directory, 2 explicit_dir
  if (found) {
    const auto s = checkpoint::CheckpointManager::step_of(*found);
    kind = s && found->parent_path() == mgr.root() ? 1 : 2;
    step = s.value_or(0);
  }
  auto t = torch::tensor({kind, step}, torch::kLong).to(comm->device());
  comm->broadcast(t, 0);
  t = t.cpu();
  if (first) return found;
  if (t[0].item<int64_t>() == 0) return std::nullopt;
  if (t[0].item<int64_t>() == 1) return mgr.dir_of(t[1].item<int64_t>());
  return stdfs::path(explicit_dir);
}

/// The numerics guard asked for a rollback: the newest checkpoint that verifies is restored
/// (weights, optimizers, estimator, KL and reward state) but the step count and the data cursor
/// stay, so training goes on with the next batches and their sampling seeds instead of replaying
/// the ones that failed (and metrics.jsonl never gets a step twice). More than optim.max_rollbacks
/// rollbacks with no finite step between them stop the run with the cause.
void roll_back(RunState& c, checkpoint::CheckpointManager& mgr, learner::NumericsGuard& guard, Metrics& m) {
  const auto& o = c.cfg.optim;
  const std::string cause = fmt::format("{} consecutive non-finite steps (the last: loss {}, gradient norm {}, at step {})",
                                        o.rollback_after, guard.last_bad_loss(), guard.last_bad_grad_norm(), c.step + 1);
  const auto last = decided_by_first_rank(c.comm.get(), mgr, [&] { return mgr.latest_verified(); }, "");
  if (!last) fail("{} and no checkpoint to roll back to: lower optim.lr, check the data, or save earlier "
                  "(checkpoint.every)", cause);
  if (!guard.may_roll_back())
    fail("{}, after {} rollback(s) with no finite step since (optim.max_rollbacks {}; the newest checkpoint: {}): the "
         "trouble is not one bad batch; stopping. Lower optim.lr, check the data, or resume from an older checkpoint "
         "with run.resume=<dir>",
         cause, guard.rollbacks_in_a_row(), o.max_rollbacks, last->string());
  const int64_t step = c.step;
  const auto cursor = c.data->cursor();
  load_checkpoint(c, *last);
  place_models(c);
  c.policy->set_gradient_checkpointing(c.cfg.model.activation_checkpointing);
  if (c.critic) c.critic->set_gradient_checkpointing(c.cfg.model.activation_checkpointing);
  replicate_models(c);
  make_optimizers(c, last);
  guard.after_rollback();
  log::warn("{}: rolled back to {}; going on with the next batches (rollback {} of at most {} in a row)", cause,
            last->string(), guard.rollbacks_in_a_row(), o.max_rollbacks);
  c.step = step;
  c.data->restore(cursor);
  m["actor/rolled_back"] = 1;
}

}  // namespace

int train(TrainJob job, const rewards::RewardRegistry& reward_schemes) {
  RunState c;
  c.cfg = std::move(job.cfg);
  c.resolved_yaml = std::move(job.resolved_yaml);
  const auto& cfg = c.cfg;
  c.algorithm = cfg.learner.algorithm;
  c.world = job.world_size;
  const int world_size = c.world;
  const bool disagg = cfg.dist.placement == "disaggregated";
  init_ranks(c, job.config_name);
  resolve_device(c, world_size > 1 ? dist::read_rendezvous_env(dist::process_env()).local_rank : 0);
  const bool lead = c.global_rank == 0;  // logs, evaluates, writes metrics and checkpoints
  const bool learner_role = c.role == dist::Role::kLearner;
  dist::Communicator* const all = disagg ? c.world_comm.get() : c.comm.get();
  const auto barrier = [&] {  // every rank
    if (all) all->barrier();
  };
  const auto learner_barrier = [&] {  // the ranks that train (all of them when colocated)
    if (c.comm) c.comm->barrier();
  };
  stop::install_handlers();  // SIGTERM / SIGINT: finish the step, checkpoint, exit 128 + signal
  log::init(log::parse_level(job.log_level.empty() ? cfg.run.log_level : job.log_level), c.global_rank, world_size,
            cfg.run.log_all_ranks);
  cli::init_threads(cfg.run.threads);
  torch::manual_seed(cfg.run.seed);
  if (cfg.rollout.max_staleness > 0 && !disagg)
    log::warn("{}: rollout.max_staleness {} has no effect with dist.placement colocated (rollouts are synchronous)",
              job.config_name, cfg.rollout.max_staleness);

  c.run_dir = std::filesystem::path(cfg.run.output_dir) / cfg.run.name;
  checkpoint::CheckpointManager mgr(c.run_dir / "checkpoints", cfg.checkpoint.keep_last);
  std::optional<checkpoint::RunDirLock> run_dir_lock;  // one job per run directory
  if (lead) {
    run_dir_lock.emplace(c.run_dir);
    if (cfg.run.resume == "none") checkpoint::prepare_fresh_run(c.run_dir, mgr.complete(), cfg.run.overwrite);
    checkpoint::prepare_run_dir(c.run_dir, c.resolved_yaml, job.argv);
  }
  barrier();
  log::info("{} | device {}{} | learner {} | run dir {}", cli::system_summary(), c.device.str(),
            c.autocast ? " (bf16 autocast)" : "", c.algorithm, c.run_dir.string());

  // ---- the run state: components from registries, models (resumed or new), optimizers ---------
  build_components(c, reward_schemes, lead, barrier);
  if (lead)
    if (const int n = mgr.discard_incomplete()) log::warn("removed {} interrupted checkpoint(s)", n);
  barrier();
  const auto resume =
      decided_by_first_rank(all, mgr, [&] { return mgr.resolve_resume(cfg.run.resume); }, cfg.run.resume);
  if (resume) checkpoint::check_resume_matches(*resume, c.resolved_yaml);
  if (resume && !learner_role) load_reward_state(c, *resume);  // scoring ranks (learners: in load_checkpoint)
  build_models(c, resume);
  if (learner_role) replicate_models(c);
  if (disagg) {
    // The other roles start at the learners' step and data cursor (a resumed run's included), and
    // the rollout ranks take learner 0's weights by the first broadcast.
    const auto cur = c.data->cursor();
    auto st = torch::tensor({c.step, cur.epoch, cur.position}, torch::kLong);
    c.world_comm->broadcast(st, 0);
    if (!learner_role) {
      c.step = st[0].item<int64_t>();
      c.data->restore({st[1].item<int64_t>(), st[2].item<int64_t>()});
    }
    if (c.sync_comm) {  // learner 0 and the rollout ranks
      const auto ws = sync_weights(c);
      if (lead) c.last_sync = ws;
      log::info("{} rank {} of {}: initial weight sync {:.1f} MB in {:.3f} s", dist::role_name(c.role), c.rank, c.world,
                static_cast<double>(ws.bytes) / 1e6, ws.seconds);
    }
    if (c.role != dist::Role::kLearner) {
      const int stop_sig = c.role == dist::Role::kRollout ? rollout_loop(c) : reward_loop(c);
      barrier();  // stay until the learners are done (rank 0 hosts the rendezvous store)
      log::info("{} rank {}: {}", dist::role_name(c.role), c.rank, stop_sig ? "stopped with the learners" : "done");
      return stop_sig ? stop::exit_status(stop_sig) : 0;
    }
  }
  const auto& o = cfg.optim;
  make_optimizers(c, resume);
  set_update_options(c);
  learner::NumericsGuard guard(o.rollback_after, o.max_rollbacks);
  if (resume) guard.resume_from(c.loaded_skipped_steps);

  std::unique_ptr<metrics::JsonlWriter> jsonl;
  if (cfg.metrics.jsonl && lead)
    jsonl = std::make_unique<metrics::JsonlWriter>(c.run_dir / "metrics.jsonl", resume ? c.step : -1);
  std::unique_ptr<metrics::TensorBoardWriter> tb;
  if (cfg.metrics.tensorboard && lead) tb = std::make_unique<metrics::TensorBoardWriter>(c.run_dir / "tensorboard");

  // ---- the loop -------------------------------------------------------------------------------
  const auto loop_t0 = std::chrono::steady_clock::now();
  int64_t steps_here = 0;
  while (c.step < cfg.run.total_steps) {
    const int64_t step = c.step + 1;
    dist::note_progress(step);  // published with this rank's heartbeats
    maybe_test_exit(c.global_rank, step);
    const auto t0 = std::chrono::steady_clock::now();
    StepOut out;
    if (disagg) out = disaggregated_learner_step(c, guard, step);
    else if (c.rl()) out = rl_step(c, guard, step);
    else if (c.is("sft")) out = sft_step(c, guard);
    else if (cfg.dpo.online) out = dpo_online_step(c, guard, step, {});
    else out = dpo_offline_step(c, guard);
    if (out.rollback) roll_back(c, mgr, guard, out.metrics);
    Metrics& m = out.metrics;
    m["time/step_s"] = seconds_since(t0);
    const double tokens = m.count("perf/response_tokens") ? m["perf/response_tokens"]
                          : m.count("sft/tokens")          ? m["sft/tokens"]
                                                           : 0;
    if (tokens > 0) m["perf/tokens_per_s"] = tokens / std::max(1e-9, m["time/step_s"]);
    m["actor/skipped_steps"] = static_cast<double>(guard.skipped_total());
    // This rank's AdamW moments (with dist.sharding optimizer: its slice).
    if (c.optimizer) {
      m["perf/optimizer_state_mib"] = static_cast<double>(dist::adamw_state_bytes(*c.optimizer)) / (1 << 20);
      double trained = 0;  // what the optimizer trains (the gradients are as large)
      for (const auto& p : c.policy->parameters()) trained += static_cast<double>(p.numel() * p.element_size());
      m["perf/trained_param_mib"] = trained / (1 << 20);
      // Weights, gradients and AdamW moments this rank held at once at most in the step (ZeRO's model
      // states; dist.sharding gradients / full: measured, with the gathered layers and gradients).
      m["perf/model_state_peak_mib"] =
          static_cast<double>(dist::take_peak_model_state_bytes(*c.optimizer, c.policy->parameters())) / (1 << 20);
    }
    c.step = step;
    ++steps_here;
    if (lead && cfg.eval.every > 0 && (step % cfg.eval.every == 0 || step == cfg.run.total_steps)) {
      const auto t = std::chrono::steady_clock::now();
      for (const auto& [k, v] : evaluate(c)) m[k] = v;
      if (c.is("dpo") && !cfg.dpo.online)
        for (const auto& [k, v] : evaluate_pairs(c)) m[k] = v;
      m["time/eval_s"] = seconds_since(t);
    }
    if (jsonl) jsonl->write(step, m);
    if (tb) tb->write(step, m);
    if (step % cfg.metrics.console_every == 0 || step == cfg.run.total_steps)
      log::info("{}", metrics::progress_line(step, cfg.run.total_steps, m, seconds_since(loop_t0), steps_here));
    // A stop signal on any rank stops them all after this step, with a checkpoint of it.
    const int stop_sig = step < cfg.run.total_steps ? agree_on_stop(c) : 0;  // the last step just finishes
    if (checkpoint_step(cfg, step) || stop_sig != 0) {
      const auto reward_states = checkpoint_reward_states(c);  // colocated: a collective
      const bool shards = write_optimizer_shards(c, mgr, lead, learner_barrier);  // sharded: every rank writes
      if (lead) save_checkpoint(c, mgr, guard, reward_states, shards);
      learner_barrier();  // a rollback on any rank must find the checkpoint complete
    }
    if (stop_sig != 0) {
      log::warn("stopped by signal {} ({}) after step {} with its checkpoint; resume with run.resume=auto", stop_sig,
                ::strsignal(stop_sig), step);
      if (disagg) {
        if (lead) send_stop_decision(c, stop_sig);
        barrier();  // the other roles stop too
      }
      return stop::exit_status(stop_sig);
    }
    // Version `step` to the rollout ranks — after the checkpoint, so that a rollout rank dying here
    // leaves this step saved. Not after the last step (the rollout ranks are done).
    if (disagg && lead && step < cfg.run.total_steps) {
      send_stop_decision(c, 0);
      c.last_sync = sync_weights(c);
    }
  }
  log::info("done: checkpoint {} | metrics {} | plot: scripts/plot_metrics {}",
            mgr.latest() ? (*mgr.latest() / "policy").string() : std::string("(none)"),
            (c.run_dir / "metrics.jsonl").string(), (c.run_dir / "metrics.jsonl").string());
  if (disagg) barrier();  // the other roles wait for this before they exit
  return 0;
}

}  // namespace keel::loop
