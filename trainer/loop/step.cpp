#include "trainer/loop/step.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <torch/torch.h>

#include "models/logprobs.h"
#include "trainer/cli/train_common.h"
#include "trainer/dist/batch_gather.h"
#include "trainer/dist/data_parallel.h"
#include "trainer/learner/sequence_batch.h"
#include "trainer/loop/credit.h"
#include "trainer/loop/fit_data.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/loop/shape.h"

namespace keel::loop {

namespace {

using cli::seconds_since;
using metrics::Metrics;

/// [N, R] log-probs of the responses under the frozen reference (at the update's temperature).
at::Tensor reference_logprobs(RunState& c, const rollout::RolloutBatch& b) {
  models::LogprobOptions lo;
  lo.temperature = c.update.temperature;
  lo.padding_free = c.cfg.batch.padding_free;
  return learner::no_grad_logprobs(*c.reference, learner::sequences(b), c.cfg.batch.micro_batch_size, lo).logprobs;
}

/// [N, R] critic values at rollout time.
at::Tensor critic_values(RunState& c, models::Transformer& critic, const rollout::RolloutBatch& b) {
  critic.train(false);
  models::LogprobOptions lo;
  lo.values = true;
  lo.logprobs = false;
  lo.padding_free = c.cfg.batch.padding_free;
  return learner::no_grad_logprobs(critic, learner::sequences(b), c.cfg.batch.micro_batch_size, lo).values;
}

/// Fraction of the rows cut at max_new_tokens.
double clip_ratio_of(const rollout::RolloutBatch& b) {
  double clip_ratio = 0;
  for (const auto& r : b.finish_reasons) clip_ratio += r == "length";
  return clip_ratio / static_cast<double>(std::max<int64_t>(1, b.size()));
}

/// Several colocated ranks: `b` (this rank's rows) becomes the global batch, and the clip ratio and
/// ReMax baselines their global values.
void gather_global(RunState& c, rollout::RolloutBatch& b, double& clip_ratio, at::Tensor& baseline, Metrics& m) {
  const auto t = std::chrono::steady_clock::now();
  const rollout::RolloutBatch local = std::move(b);  // this rank's rows (texts, records)
  b = dist::all_gather_batch(*c.comm, local);
  Metrics cm{{"response/clip_ratio", clip_ratio}};
  dist::all_reduce_metrics(*c.comm, cm, dist::ReduceOp::kMean);
  clip_ratio = cm["response/clip_ratio"];
  if (baseline.defined()) baseline = torch::cat(c.comm->all_gather_varsize(baseline), 0);
  m["time/gather_s"] = seconds_since(t);
}

/// The step's reward, response-length and KL-coefficient metrics.
void step_metrics(const RunState& c, const rollout::RolloutBatch& b, double clip_ratio, Metrics& m) {
  const auto len = b.response_mask.sum(1).to(torch::kFloat);
  m["reward/mean"] = b.rewards.mean().item<double>();
  m["reward/std"] = b.rewards.std(/*unbiased=*/false).item<double>();
  m["response/length_mean"] = len.mean().item<double>();
  m["response/length_max"] = len.max().item<double>();
  m["response/clip_ratio"] = clip_ratio;
  m["perf/response_tokens"] = len.sum().item<double>();
  if (c.kl_ctl) m["actor/kl_coef"] = c.kl_ctl->value();
}

}  // namespace

StepOut rl_learn(RunState& c, learner::NumericsGuard& guard, int64_t step, rollout::RolloutBatch b, Metrics m,
                 bool global) {
  auto t = std::chrono::steady_clock::now();
  if (c.reference) b.ref_logprobs = reference_logprobs(c, b);
  m["time/reference_s"] = seconds_since(t);
  if (auto* critic = c.critic_model()) {
    t = std::chrono::steady_clock::now();
    b.values = critic_values(c, *critic, b);
    m["time/values_s"] = seconds_since(t);
  }
  double clip_ratio = clip_ratio_of(b);
  // ReMax's greedy baselines, of this rank's groups (before the gather: they need the records).
  at::Tensor baseline;
  if (c.greedy_baselines()) {
    t = std::chrono::steady_clock::now();
    baseline = remax_baseline(c, b, step);
    m["time/baseline_s"] = seconds_since(t);
  }
  if (c.comm && !global) gather_global(c, b, clip_ratio, baseline, m);

  const Shaped shaped = shape(c, b, m);
  assign_credit(c, b, shaped, baseline, step, m);

  t = std::chrono::steady_clock::now();
  const auto upd = update_policy(c, b, guard);
  m["time/update_s"] = seconds_since(t);
  for (const auto& [k, v] : upd.metrics) m[k] = v;
  if (upd.rollback) return {m, true};

  step_metrics(c, b, clip_ratio, m);
  return {m, false};
}

StepOut rl_step(RunState& c, learner::NumericsGuard& guard, int64_t step) {
  Metrics m;
  PromptStore store;  // the records b points to
  auto b = sample(c, step, store, m);
  add_data_metrics(c, m);
  return rl_learn(c, guard, step, std::move(b), std::move(m), /*global=*/false);
}

}  // namespace keel::loop
