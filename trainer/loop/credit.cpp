#include "trainer/loop/credit.h"

#include <cstdlib>
#include <limits>
#include <utility>

#include <torch/torch.h>

#include "base/log.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/loop/score.h"

namespace keel::loop {

at::Tensor remax_baseline(RunState& c, const rollout::RolloutBatch& b, int64_t step) {
  std::vector<data::PromptRecord> firsts;
  const auto g = b.group_ids.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b.size(); ++i)
    if (g[i] == static_cast<int64_t>(firsts.size())) firsts.push_back(*b.records[static_cast<size_t>(i)]);
  auto ro = train_rollout_options(c, step, 0);
  ro.samples_per_prompt = 1;
  ro.temperature = 0;
  const auto greedy = rollout::generate_rollouts(*c.policy, *c.tok, firsts, ro);
  const auto base = score(*c.reward, greedy, step).rewards.to(torch::kFloat);
  return base.index_select(0, b.group_ids);
}

void assign_credit(RunState& c, rollout::RolloutBatch& b, const Shaped& shaped, const at::Tensor& baseline,
                   int64_t step, metrics::Metrics& m) {
  credit::AdvantageInputs ain;
  ain.token_rewards = b.token_rewards;
  ain.response_mask = b.response_mask;
  ain.group_ids = b.group_ids;
  ain.old_logprobs = b.old_logprobs;
  ain.state = c.est_state;
  if (b.values.defined()) ain.values = b.values;
  if (c.reference) ain.ref_logprobs = b.ref_logprobs;
  if (baseline.defined()) {
    ain.baseline_rewards = baseline;
    // Every group has samples_per_prompt rows, so the row mean is the mean over prompts.
    m["reward/greedy_baseline_mean"] = baseline.mean().item<double>();
  }
  if (shaped.kl_rewards.defined()) ain.kl_rewards = shaped.kl_rewards;
  // Pairwise estimators compare rows by their sequence rewards. INTERPRETATION: with no learned
  // judge, the reward is the oracle — spo_winrate's P(a > b) is 1 / 0.5 / 0 by reward order, and
  // arena_rank's bidirectional match gives the higher-rewarded row 1 point per direction (ties
  // half each).
  const auto rw = b.rewards.contiguous();
  const float* rp = rw.data_ptr<float>();
  ain.preference = [rp](int64_t a, int64_t bb) { return rp[a] > rp[bb] ? 1.0 : rp[a] < rp[bb] ? 0.0 : 0.5; };
  ain.pair_judge = [rp](int64_t a, int64_t bb) {
    const double p = rp[a] > rp[bb] ? 1.0 : rp[a] < rp[bb] ? 0.0 : 0.5;
    return std::pair<double, double>{2 * p, 2 * (1 - p)};
  };
  auto aout = c.estimator(ain, c.adv_opts);
  // Fault injection for the rollback test: KEEL_TEST_INJECT_NAN_STEP=k poisons step k's
  // advantages once per process.
  static bool injected = false;
  if (const char* inj = std::getenv("KEEL_TEST_INJECT_NAN_STEP"); inj && !injected && std::atoll(inj) == step) {
    aout.advantages = aout.advantages * std::numeric_limits<float>::quiet_NaN();
    injected = true;
    log::warn("KEEL_TEST_INJECT_NAN_STEP: poisoned the advantages of step {}", step);
  }
  b.advantages = aout.advantages.to(torch::kFloat);
  b.returns = aout.returns.defined() ? aout.returns.to(torch::kFloat) : aout.returns;
  b.loss_mask = aout.loss_mask.defined() ? aout.loss_mask : b.response_mask;
  c.est_state = aout.state;
  for (const auto& [k, v] : aout.metrics) m[k] = v;
}

}  // namespace keel::loop
