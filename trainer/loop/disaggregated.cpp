#include "trainer/loop/disaggregated.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <thread>

#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "trainer/cli/train_common.h"
#include "trainer/dist/batch_transport.h"
#include "trainer/loop/checkpoint_io.h"
#include "trainer/loop/fit_data.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/loop/score.h"
#include "trainer/loop/step.h"
#include "trainer/loop/stop.h"
#include "trainer/loop/sync.h"
#include "trainer/rollout/staleness.h"

namespace keel::loop {

namespace {

using cli::seconds_since;
using metrics::Metrics;

/// Sends a scored share of a step to every learner rank.
void send_to_learners(RunState& c, const dist::BatchMessage& msg) {
  for (const int l : c.placement->learner_group()) dist::send_batch(*c.world_comm, msg, l);
}

}  // namespace

void maybe_test_exit(int global_rank, int64_t step) {
  if (const char* e = std::getenv("KEEL_TEST_STEP_SLEEP_MS"))  // slow steps, for the signal tests
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(e)));
  if (const char* e = std::getenv("KEEL_TEST_EXIT_AT")) {
    int r = -1;
    long long s_at = -1;
    if (std::sscanf(e, "%d:%lld", &r, &s_at) == 2 && r == global_rank && s_at == step) {
      log::warn("KEEL_TEST_EXIT_AT: rank {} exits at step {}", r, step);
      std::_Exit(3);
    }
  }
}

int rollout_loop(RunState& c) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  const int64_t total = cfg.run.total_steps;
  int64_t lag = 0;  // test hook: generate this many more batches ahead than max_staleness allows
  if (const char* e = std::getenv("KEEL_TEST_ROLLOUT_LAG")) lag = std::max(0LL, std::atoll(e));
  if (lag > 0) log::warn("KEEL_TEST_ROLLOUT_LAG: rollout runs {} batch(es) further ahead than max_staleness", lag);
  struct Pending {
    int64_t step;
    PromptStore store;  // the records the batch points to
    dist::BatchMessage msg;
  };
  std::deque<Pending> queue;
  const int64_t first = c.step + 1;
  int64_t next = first, version = c.step;
  double idle = 0;
  const bool scoring = pl.rewards == 0;
  const auto generate = [&](int64_t t) {
    Pending p;
    p.step = t;
    Metrics m;
    p.msg.batch = sample(c, t, p.store, m, scoring);
    p.msg.step = t;
    p.msg.batch.policy_version = version;
    p.msg.batch.row_versions = torch::full({p.msg.batch.size()}, version, torch::kLong);
    if (scoring) attach_reward_state(c, p.msg, t);  // the state after scoring batch t
    for (const auto& [k, v] : m) (k.rfind("time/", 0) == 0 ? p.msg.role_metrics : p.msg.reward_metrics)[k] = v;
    queue.push_back(std::move(p));
  };
  for (int64_t s = first; s <= total; ++s) {
    dist::note_progress(s);
    maybe_test_exit(c.global_rank, s);
    auto t = std::chrono::steady_clock::now();
    if (s > first) {
      if (const int sig = receive_stop_decision(c)) {  // the learners stopped after step s-1
        if (!scoring) dist::send_stop_marker(*c.world_comm, sig, pl.source_of_rollout(c.rank));
        return sig;
      }
      sync_weights(c);  // version s-1
      version = s - 1;
    }
    idle += seconds_since(t);
    while (next <= s) generate(next++);
    Pending p = std::move(queue.front());
    queue.pop_front();
    if (p.step != s) fail("rollout rank {}: queued batch {} where step {} was due", c.global_rank, p.step, s);
    p.msg.role_metrics["async/queue_depth"] = static_cast<double>(queue.size() + 1);
    p.msg.role_metrics["time/idle_rollout_s"] = idle;  // blocked since the previous send (broadcast included)
    t = std::chrono::steady_clock::now();
    if (scoring) send_to_learners(c, p.msg);
    else dist::send_batch(*c.world_comm, p.msg, pl.source_of_rollout(c.rank));
    idle = seconds_since(t);
    // Generate ahead while the learner trains on batch s (async), up to max_staleness batches.
    while (next <= std::min(total, s + cfg.rollout.max_staleness + lag)) generate(next++);
  }
  return 0;
}

int reward_loop(RunState& c) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  const int64_t want = cfg.batch.prompts_per_step, per = want / pl.rollouts;
  double idle = 0;
  for (int64_t s = c.step + 1; s <= cfg.run.total_steps; ++s) {
    dist::note_progress(s);
    maybe_test_exit(c.global_rank, s);
    const auto prompts = c.data->next_batch(static_cast<size_t>(want));
    const auto served = pl.rollouts_of_reward(c.rank);
    for (const int i : served) {
      auto t = std::chrono::steady_clock::now();
      auto msg = dist::recv_batch(*c.world_comm, pl.rollout_rank(i));
      idle += seconds_since(t);
      if (msg.stop_signal != 0) {  // the learners stopped the run: every rollout rank served sends one
        for (const int j : served)
          if (j > i && dist::recv_batch(*c.world_comm, pl.rollout_rank(j)).stop_signal == 0)
            fail("reward rank {}: rollout rank {} sent rows after another stopped the run", c.global_rank, pl.rollout_rank(j));
        return msg.stop_signal;
      }
      if (msg.step != s)
        fail("reward rank {}: rows of step {} from rollout rank {} where step {} was due", c.global_rank, msg.step,
             pl.rollout_rank(i), s);
      auto& b = msg.batch;
      const auto g = b.group_ids.accessor<int64_t, 1>();
      for (int64_t r = 0; r < b.size(); ++r) b.records.push_back(&prompts[static_cast<size_t>(i * per + g[r])]);
      t = std::chrono::steady_clock::now();
      const auto rout = score(*c.reward, b, s);
      c.score_watch.log_failures(rout);
      write_scores(b, rout);
      // The rollout rank's own metrics (an environment's env/*) stay beside the reward's.
      for (const auto& [k, v] : rout.metrics) msg.reward_metrics[k] = v;
      msg.role_metrics["time/reward_s"] = seconds_since(t);
      msg.role_metrics["time/idle_reward_s"] = idle;
      b.records.clear();
      if (i == served.back()) attach_reward_state(c, msg, s);  // after its last share of step s
      t = std::chrono::steady_clock::now();
      send_to_learners(c, msg);
      idle = seconds_since(t);
    }
  }
  return 0;
}

StepOut disaggregated_learner_step(RunState& c, learner::NumericsGuard& guard, int64_t step) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  Metrics m;
  c.data->next_batch(static_cast<size_t>(cfg.batch.prompts_per_step));  // the cursor checkpoints save
  add_data_metrics(c, m);
  std::vector<rollout::RolloutBatch> parts;
  std::vector<Metrics> reward_parts;
  Metrics role;
  double idle = 0;
  for (int i = 0; i < pl.rollouts; ++i) {
    const auto t = std::chrono::steady_clock::now();
    auto msg = dist::recv_batch(*c.world_comm, pl.source_of_rollout(i));
    idle += seconds_since(t);
    if (msg.step != step)
      fail("learner rank {}: rows of step {} from rank {} where step {} was due", c.global_rank, msg.step,
           pl.source_of_rollout(i), step);
    if (!msg.reward_state.empty()) {  // from a scorer: its index is the sender's among its role
      c.scorer_states.resize(static_cast<size_t>(scorer_count(c)));
      c.scorer_states[static_cast<size_t>(pl.index_of(pl.source_of_rollout(i)))] = std::move(msg.reward_state);
    }
    parts.push_back(std::move(msg.batch));
    reward_parts.push_back(std::move(msg.reward_metrics));
    for (const auto& [k, v] : msg.role_metrics) role[k] += v / pl.rollouts;  // mean over the rollout shares
  }
  const Metrics reward_metrics = combine_reward_metrics(reward_parts);
  c.score_watch.check_step(step, reward_metrics);
  for (const auto& [k, v] : reward_metrics) m[k] = v;
  for (const auto& [k, v] : role) m[k] = v;
  m["time/idle_learner_s"] = idle;
  if (c.last_sync) weight_sync_metrics(*c.last_sync, m);
  c.last_sync.reset();
  auto b = rollout::concat(parts);
  // Staleness: rows sampled by a policy more than max_staleness updates old are dropped, and the
  // rest cut to whole groups and mini-batches (staleness is uniform within a step's rows here, so
  // in practice a step is kept or dropped whole).
  const auto st = rollout::filter_stale_rows(b.row_versions, c.step, cfg.rollout.max_staleness);
  for (const auto& [k, v] : st.metrics) m[k] = v;
  const int64_t keep = rollout::whole_units(st.keep.numel(), cfg.rollout.samples_per_prompt, cfg.batch.mini_batch_size);
  m["rollout/dropped_uneven"] = static_cast<double>(st.keep.numel() - keep);
  c.dropped_stale_total += b.size() - keep;
  m["rollout/dropped_stale_total"] = static_cast<double>(c.dropped_stale_total);
  m["async/policy_version_min"] = b.row_versions.min().item<double>();
  if (keep == 0) {
    log::warn("step {}: all {} rows were sampled more than rollout.max_staleness {} versions ago; no update", step,
              b.size(), cfg.rollout.max_staleness);
    m["async/skipped_update"] = 1;
    return {m, false};
  }
  if (keep < b.size()) {
    b = rollout::select_rows(b, st.keep.slice(0, 0, keep));
    b.group_ids = renumber_groups(b.group_ids);
  }
  m["async/skipped_update"] = 0;
  // The policy loss's importance ratio is exp(logp_now - b.old_logprobs): old_logprobs are the
  // behaviour log-probs the sampler recorded under the (possibly stale) version that generated the
  // rows — never recomputed here — so the ratio corrects for the staleness.
  return rl_learn(c, guard, step, std::move(b), std::move(m), /*global=*/true);
}

}  // namespace keel::loop
