#include "trainer/loop/sample.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <torch/torch.h>

#include "base/log.h"
#include "trainer/cli/train_common.h"
#include "trainer/credit/group_filter.h"
#include "trainer/dist/batch_gather.h"
#include "trainer/dist/data_parallel.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/score.h"

namespace keel::loop {

using cli::seconds_since;
using metrics::Metrics;

void set_engine_options(rollout::RolloutOptions& ro, const config::RolloutSection& c) {
  ro.paged = c.engine == "paged";
  ro.engine.block_size = c.kv_block_size;
  ro.engine.num_blocks = c.kv_blocks;
  ro.engine.prefix_cache = c.prefix_cache;
}

rollout::RolloutOptions train_rollout_options(const RunState& c, int64_t step, int attempt) {
  const auto& cfg = c.cfg;
  rollout::RolloutOptions ro;
  ro.samples_per_prompt = cfg.rollout.samples_per_prompt;
  ro.max_new_tokens = cfg.rollout.max_new_tokens;
  ro.temperature = cfg.rollout.temperature;
  ro.top_k = cfg.rollout.top_k;
  ro.top_p = cfg.rollout.top_p;
  ro.stop_token_ids = cfg.rollout.stop_token_ids;
  ro.batch_size = cfg.rollout.batch_size;
  set_engine_options(ro, cfg.rollout);
  ro.chat_template = c.chat_template;
  ro.seed = static_cast<uint64_t>(cfg.run.seed) * 1000003ull + static_cast<uint64_t>(step) +
            static_cast<uint64_t>(attempt) * 0x9E3779B97F4A7C15ull;
  return ro;
}

at::Tensor renumber_groups(const at::Tensor& group_ids) {
  auto g = group_ids.clone();
  std::map<int64_t, int64_t> ids;
  auto acc = g.accessor<int64_t, 1>();
  for (int64_t i = 0; i < g.size(0); ++i) {
    const auto it = ids.emplace(acc[i], static_cast<int64_t>(ids.size())).first;
    acc[i] = it->second;
  }
  return g;
}

rollout::RolloutBatch sample(RunState& c, int64_t step, PromptStore& prompt_store, Metrics& m, bool scoring) {
  const auto& cfg = c.cfg;
  const int64_t want = cfg.batch.prompts_per_step;
  const bool filter = cfg.filter.dynamic_sampling && c.rl();
  std::vector<rollout::RolloutBatch> kept, dropped;
  int64_t kept_groups = 0, gen_batches = 0, filtered = 0;
  double t_rollout = 0, t_reward = 0;
  models::EngineStats engine, engine_sum;
  Metrics reward_metrics, env_metrics;
  for (int attempt = 0; attempt < (filter ? cfg.filter.max_gen_batches : 1) && kept_groups < want; ++attempt) {
    prompt_store.push_back(c.data->next_batch(static_cast<size_t>(want)));
    const auto& all = prompt_store.back();  // (deque: stays valid as more are stored)
    auto ro = train_rollout_options(c, step, attempt);
    if (c.world > 1) {
      // This rank's share of the step's prompts; its rows sample as the same global rows would.
      const int64_t per = want / c.world;
      prompt_store.emplace_back(all.begin() + c.rank * per, all.begin() + (c.rank + 1) * per);
      ro.first_row = c.rank * per * cfg.rollout.samples_per_prompt;
    }
    auto t = std::chrono::steady_clock::now();
    c.policy->train(false);
    env::EpisodeStats es;  // (several attempts: the last one's figures)
    auto b = c.env ? env::run_episodes(*c.policy, *c.tok, *c.env, *c.env_pool, prompt_store.back(), ro, c.episode, &es)
                   : rollout::generate_rollouts(*c.policy, *c.tok, prompt_store.back(), ro, &engine);
    engine_sum.add(engine);
    if (c.env) {
      env_metrics.clear();
      es.add_metrics(env_metrics);
      for (const auto& [k, v] : c.env->metrics()) env_metrics["env/" + k] = v;
      if (!es.first_error.empty()) log::warn("environment {}: {}", c.cfg.env.name, es.first_error);
    }
    b.policy_version = c.step;
    t_rollout += seconds_since(t);
    ++gen_batches;
    if (!scoring) {
      kept.push_back(std::move(b));
      kept_groups = want;
      break;
    }
    t = std::chrono::steady_clock::now();
    const auto rout = score(*c.reward, b, step);
    c.score_watch.log_failures(rout);
    write_scores(b, rout);
    if (attempt == 0) reward_metrics = rout.metrics;
    t_reward += seconds_since(t);
    if (!filter) {
      kept.push_back(std::move(b));
      kept_groups = want;
      break;  // (with several ranks this rank holds want / world of the groups)
    }
    if (c.comm) {
      // Several ranks: every rank filters the attempt's global rows (rank-major = one process's
      // order), so they keep the same groups one process would; each takes its share at the end.
      auto g = dist::all_gather_batch(*c.comm, b, /*pad_id=*/0, /*with_texts=*/true);
      const auto gid = g.group_ids.accessor<int64_t, 1>();
      for (int64_t r = 0; r < g.size(); ++r) g.records.push_back(&all[static_cast<size_t>(gid[r])]);
      b = std::move(g);
    }
    // (acc: the verifiers' correctness flag; the contract check refuses acc without a verifier)
    const at::Tensor metric = cfg.filter.metric == "acc" ? b.correct : b.rewards;
    const auto keep_rows = credit::dynamic_sampling_row_mask(metric, b.group_ids);
    const auto keep_idx = keep_rows.nonzero().squeeze(1);
    const auto drop_idx = keep_rows.logical_not().nonzero().squeeze(1);
    const int64_t groups_here = keep_idx.numel() / cfg.rollout.samples_per_prompt;
    filtered += want - groups_here;
    // Take only as many kept groups as still needed.
    const int64_t take = std::min(groups_here, want - kept_groups);
    if (take > 0) kept.push_back(rollout::select_rows(b, keep_idx.slice(0, 0, take * cfg.rollout.samples_per_prompt)));
    kept_groups += take;
    if (drop_idx.numel() > 0) dropped.push_back(rollout::select_rows(b, drop_idx));
  }
  int64_t topped_up = 0;
  if (kept_groups < want) {
    const int64_t need_rows = (want - kept_groups) * cfg.rollout.samples_per_prompt;
    auto pool = rollout::concat(dropped);
    kept.push_back(rollout::select_rows(pool, torch::arange(need_rows)));
    topped_up = want - kept_groups;
    log::warn("dynamic sampling: only {} of {} groups had varied {} after {} generation batches; topped up with {} "
              "uniform group(s)", kept_groups, want, cfg.filter.metric, gen_batches, topped_up);
  }
  auto b = rollout::concat(kept);
  b.group_ids = renumber_groups(b.group_ids);  // 0..want-1 in order of first appearance
  if (filter && c.comm) {  // this rank's share of the kept global groups (rows of a group are contiguous)
    const int64_t rows = want / c.world * cfg.rollout.samples_per_prompt;
    b = rollout::select_rows(b, torch::arange(c.rank * rows, (c.rank + 1) * rows));
    b.group_ids = renumber_groups(b.group_ids);
  }
  if (c.comm) reduce_reward_metrics(*c.comm, reward_metrics);
  // Colocated, every rank holds the same combined metrics, so all stop together; disaggregated,
  // the learners watch (disaggregated_learner_step).
  if (scoring && !c.placement) c.score_watch.check_step(step, reward_metrics);
  if (!env_metrics.empty()) {
    // Several ranks: counts add up (timeouts, errors, the factories' restarts and failures), the
    // per-episode figures average (every rank plays as many episodes); timings stay this rank's.
    if (c.comm) {
      Metrics sums, means;
      for (const auto& [k, v] : env_metrics) {
        if (k.rfind("time/", 0) == 0 || k.rfind("perf/", 0) == 0) continue;
        const bool count = k == "env/timeouts" || k == "env/errors" || k == "env/restarts" || k == "env/failures";
        (count ? sums : means)[k] = v;
      }
      dist::all_reduce_metrics(*c.comm, sums, dist::ReduceOp::kSum);
      dist::all_reduce_metrics(*c.comm, means, dist::ReduceOp::kMean);
      for (auto* part : {&sums, &means})
        for (const auto& [k, v] : *part) env_metrics[k] = v;
    }
    for (const auto& [k, v] : env_metrics) m[k] = v;
  }
  for (const auto& [k, v] : reward_metrics) m[k] = v;
  m["time/rollout_s"] = t_rollout;
  if (!c.env && cfg.rollout.engine == "paged") {
    // This rank's paged-engine figures (perf/: its own, like timings; they depend on how the rows
    // fall on ranks), over the step's generation attempts (the peak: the largest).
    m["perf/rollout_prefill_tokens"] = static_cast<double>(engine_sum.prefill_tokens);
    m["perf/rollout_reused_prompt_tokens"] = static_cast<double>(engine_sum.reused_tokens);
    m["perf/rollout_preemptions"] = static_cast<double>(engine_sum.preemptions);
    m["perf/rollout_kv_peak_mib"] = static_cast<double>(engine_sum.peak_kv_bytes()) / (1 << 20);
  }
  if (scoring) m["time/reward_s"] = t_reward;
  if (filter) {
    m["filter/gen_batches"] = static_cast<double>(gen_batches);
    m["filter/filtered_groups"] = static_cast<double>(filtered);
    m["filter/topped_up_groups"] = static_cast<double>(topped_up);
  }
  return b;
}

}  // namespace keel::loop
