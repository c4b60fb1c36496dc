#include "trainer/loop/credit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include <torch/torch.h>

#include "base/log.h"
#include "trainer/cli/train_common.h"
#include "trainer/credit/thr.h"
#include "trainer/credit/verl_rank.h"
#include "trainer/learner/sequence_batch.h"
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
  // Scoring the baselines must not move a stateful reward's statistics (they are not training
  // rows): the state is put back as evaluation does.
  const RewardStateRestorer restore(c.reward.get());
  const auto base = score(*c.reward, greedy, step).rewards.to(torch::kFloat);
  return base.index_select(0, b.group_ids);
}

at::Tensor policy_rank_metrics(RunState& c, const rollout::RolloutBatch& b) {
  const auto& v = c.adv_opts.verl;
  models::LogprobOptions lo;
  lo.logprobs = false;
  lo.padding_free = c.cfg.batch.padding_free;
  lo.hidden_reduce = [&v](const at::Tensor& hidden, const at::Tensor& mask) {
    return credit::response_rank_metrics(hidden, mask, v.stride, v.max_seq_len);
  };
  c.policy->train(false);
  const learner::SequenceBatch seqs = learner::sequences(b);
  return learner::no_grad_logprobs(*c.policy, seqs, c.cfg.batch.micro_batch_size, lo).hidden_reduced;
}

std::pair<at::Tensor, at::Tensor> policy_thr_inputs(RunState& c, const rollout::RolloutBatch& b) {
  // THR's vocabulary V* lives inside U, the batch's distinct valid response tokens: the policy's
  // next-token probabilities are kept on those U columns only (never [N, T, V]), and token ids are
  // renumbered to their column, so thr_prediction_errors sees a U-word vocabulary holding every V*.
  const auto ids = b.response_ids.to(torch::kLong);
  const auto valid = b.response_mask.to(torch::kBool);
  const auto vocab = std::get<0>(at::_unique(ids.masked_select(valid), /*sorted=*/true, /*return_inverse=*/false));
  const int64_t u = vocab.numel();
  const int64_t n = ids.size(0), t = ids.size(1);
  const auto cols = torch::searchsorted(vocab, ids.flatten()).clamp_max(std::max<int64_t>(u - 1, 0)).view_as(ids);
  // One no-grad forward per micro-batch returns, per row, its final hidden states [T, H] (the state
  // each response token was sampled from) and the probabilities q [T, U] (at the sampling
  // temperature, as the behaviour log-probs), packed side by side.
  const double temp = c.cfg.rollout.temperature > 0 ? c.cfg.rollout.temperature : 1.0;
  models::Transformer& policy = *c.policy;
  const auto vocab_dev = vocab.to(policy.device());
  int64_t h = 0;
  models::LogprobOptions lo;
  lo.logprobs = false;
  lo.padding_free = c.cfg.batch.padding_free;
  lo.hidden_reduce = [&](const at::Tensor& hidden, const at::Tensor&) {
    h = hidden.size(2);
    const auto q = torch::softmax(policy.lm_logits(hidden).to(torch::kFloat) / temp, -1).index_select(2, vocab_dev);
    return torch::cat({hidden.flatten(1), q.flatten(1)}, 1);
  };
  policy.train(false);
  const learner::SequenceBatch seqs = learner::sequences(b);
  const auto packed = learner::no_grad_logprobs(policy, seqs, c.cfg.batch.micro_batch_size, lo).hidden_reduced;
  const auto hidden = packed.narrow(1, 0, t * h).view({n, t, h});
  const auto q = packed.narrow(1, t * h, t * u).view({n, t, u});
  auto [errors, cols_vocab] = credit::thr_prediction_errors(cols, q, b.response_mask, b.group_ids);
  (void)cols_vocab;
  return {hidden, errors};
}

std::pair<credit::PreferenceOracle, credit::PairJudge> judge_pair_oracles(const rollout::RolloutBatch& b) {
  const auto prefs = b.pair_prefs.to(torch::kDouble).cpu().contiguous();
  const auto gid = b.group_ids.cpu().contiguous();
  const int64_t n = b.size();
  // Each row's position in its group (batch order), the pairwise judge's column of it.
  auto pos = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(n));
  std::map<int64_t, int64_t> seen;
  const auto ga = gid.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) (*pos)[static_cast<size_t>(i)] = seen[ga[i]]++;
  TORCH_CHECK(prefs.dim() == 2 && prefs.size(0) == n, "pair_prefs must be [N, G] with N = ", n, ", got ", prefs.sizes());
  // The estimators ask O(G²) pairs per group: read a plain copy, not one tensor index per pair.
  const int64_t cols = prefs.size(1);
  auto vals = std::make_shared<std::vector<double>>(prefs.data_ptr<double>(), prefs.data_ptr<double>() + prefs.numel());
  const auto p = [vals, pos, cols](int64_t a, int64_t b) {
    const int64_t col = (*pos)[static_cast<size_t>(b)];
    TORCH_CHECK(col < cols, "pair_prefs: a group larger than its ", cols, " columns");
    return (*vals)[static_cast<size_t>(a * cols + col)];
  };
  // SPO: P(a ≻ b) as the judge answered with a first. ArenaRL: one bidirectional match, each side's
  // score summed over both orders, J(a, b) + J(b, a) = 1 + d and 1 − d with d = P(a ≻ b) − P(b ≻ a)
  // (the reward-order judge's (2P, 2(1 − P))). [interp] |d| below 1e-6 — the same text both ways,
  // scored in differently padded batches — is a tie, as the reward-order judge's equal rewards are.
  credit::PreferenceOracle oracle = p;
  credit::PairJudge match = [p](int64_t a, int64_t b) {
    double d = p(a, b) - p(b, a);
    if (std::abs(d) < 1e-6) d = 0;
    return std::make_pair(1 + d, 1 - d);
  };
  return {oracle, match};
}

StageInputs judge_stages(const rollout::RolloutBatch& b, int64_t k) {
  TORCH_CHECK(b.step_scores.defined() && b.step_end_mask.defined(),
              "ss_grpo: the batch carries no judge steps (a prm judge under reward.judges cuts and scores them)");
  const int64_t n = b.size(), r = b.response_ids.size(1);
  const auto ends = b.step_end_mask.to(torch::kFloat).cpu().contiguous();
  const auto scores = b.step_scores.to(torch::kFloat).cpu().contiguous();
  const auto e = ends.accessor<float, 2>();
  const auto sc = scores.accessor<float, 2>();
  StageInputs out{torch::full({n, r}, -1, torch::kLong), torch::zeros({n, k}, torch::kFloat),
                  torch::zeros({n, k}, torch::kBool)};
  auto ids = out.ids.accessor<int64_t, 2>();
  auto rew = out.rewards.accessor<float, 2>();
  auto pres = out.present.accessor<bool, 2>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t step = 0, last_end = -1;
    for (int64_t t = 0; t < r; ++t) {
      if (e[i][t] == 0) continue;
      const int64_t stage = std::min(step, k - 1);
      for (int64_t u = last_end + 1; u <= t; ++u) ids[i][u] = stage;
      rew[i][stage] = sc[i][t];  // a merged stage keeps its last step's score
      pres[i][stage] = true;
      last_end = t;
      ++step;
    }
  }
  return out;
}

StageInputs env_stages(const rollout::RolloutBatch& b, int64_t k) {
  TORCH_CHECK(b.turn_ids.defined() && b.env_turn_rewards.defined(), "ss_grpo: the batch has no environment turns");
  const int64_t n = b.size(), r = b.turn_ids.size(1), t = b.env_turn_rewards.size(1);
  StageInputs out{torch::full({n, r}, -1, torch::kLong), torch::zeros({n, k}, torch::kFloat),
                  torch::zeros({n, k}, torch::kBool)};
  auto ids = out.ids.accessor<int64_t, 2>();
  auto rew = out.rewards.accessor<float, 2>();
  auto pres = out.present.accessor<bool, 2>();
  const auto turn = b.turn_ids.accessor<int64_t, 2>();
  const auto tr = b.env_turn_rewards.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t played = 0;
    for (int64_t j = 0; j < r; ++j)
      if (turn[i][j] >= 0) {
        ids[i][j] = std::min(turn[i][j], k - 1);
        played = std::max(played, turn[i][j] + 1);
      }
    for (int64_t s = 0; s < std::min(played, t); ++s) {
      rew[i][std::min(s, k - 1)] = tr[i][s];
      pres[i][std::min(s, k - 1)] = true;
    }
  }
  return out;
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
  if (c.needs_input("rank_metrics")) {
    const auto t = std::chrono::steady_clock::now();
    ain.rank_metrics = policy_rank_metrics(c, b);
    m["time/rank_metrics_s"] = cli::seconds_since(t);
  }
  if (c.needs_input("hidden_states")) {
    const auto t = std::chrono::steady_clock::now();
    std::tie(ain.hidden_states, ain.pred_errors) = policy_thr_inputs(c, b);
    m["time/hidden_states_s"] = cli::seconds_since(t);
  }
  if (b.pair_prefs.defined()) std::tie(ain.preference, ain.pair_judge) = judge_pair_oracles(b);
  if (c.needs_input("stage_rewards")) {
    const int64_t k = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(c.adv_opts.ss.lambda.size()))));
    // The environment's turns are the stages when there is one; else a prm judge's steps.
    auto st = b.turn_ids.defined() ? env_stages(b, k) : judge_stages(b, k);
    ain.stage_ids = st.ids;
    ain.stage_rewards = st.rewards;
    ain.stage_present = st.present;
  }
  if (b.correct.defined()) ain.correctness = b.correct > 0.5;
  if (b.turn_ids.defined()) ain.turn_ids = b.turn_ids;  // multi-turn episodes (turn_grpo, r3l_opmd segments)
  // R³L's pivot: an environment that reports info pivot_turn (the reflect-then-retry environment:
  // the first retry's turn) gives r3l_opmd its pivot_steps; the earlier turns are masked.
  if (const auto it = std::find(b.env_keys.begin(), b.env_keys.end(), "pivot_turn"); it != b.env_keys.end())
    ain.pivot_steps = b.env_info.select(1, it - b.env_keys.begin()).round().to(torch::kLong);  // the verifiers' flag (thr's positive set)
  // arena_rank and spo_winrate take a pairwise judge model's preferences (above), or compare rows by
  // their rewards when the config says judge: reward_order (inside the estimator); with neither the
  // contract check refuses the config.
  auto aout = c.estimator(ain, c.adv_opts);
  // Fault injection for the rollback tests: KEEL_TEST_INJECT_NAN_STEP=k poisons step k's
  // advantages once per process; "k+" poisons every step from k on (a run that cannot recover).
  static bool injected = false;
  if (const char* inj = std::getenv("KEEL_TEST_INJECT_NAN_STEP")) {
    const std::string spec = inj;
    const bool from = !spec.empty() && spec.back() == '+';
    const int64_t at = std::atoll(spec.c_str());
    if (from ? step >= at : (!injected && step == at)) {
      aout.advantages = aout.advantages * std::numeric_limits<float>::quiet_NaN();
      injected = true;
      log::warn("KEEL_TEST_INJECT_NAN_STEP: poisoned the advantages of step {}", step);
    }
  }
  b.advantages = aout.advantages.to(torch::kFloat);
  b.returns = aout.returns.defined() ? aout.returns.to(torch::kFloat) : aout.returns;
  b.loss_mask = aout.loss_mask.defined() ? aout.loss_mask : b.response_mask;
  c.est_state = aout.state;
  for (const auto& [k, v] : aout.metrics) m[k] = v;
}

}  // namespace keel::loop
