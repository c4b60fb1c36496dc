#include "trainer/loop/evaluate.h"

#include <algorithm>

#include <fmt/format.h>
#include <torch/torch.h>

#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/sequence_batch.h"
#include "trainer/loop/run_state.h"
#include "trainer/loop/sample.h"
#include "trainer/loop/score.h"
#include "trainer/loop/update.h"
#include "trainer/rollout/rollout.h"

namespace keel::loop {

using metrics::Metrics;

Metrics evaluate(RunState& c) {
  if (!c.reward) return {};
  const RewardStateRestorer restore(c.reward.get());
  const auto& evalset = c.data->eval_set();
  const size_t n = std::min(evalset.size(), static_cast<size_t>(c.cfg.eval.num_prompts));
  if (n == 0) return {};
  std::vector<data::PromptRecord> prompts(evalset.begin(), evalset.begin() + static_cast<long>(n));
  rollout::RolloutOptions ro;
  ro.samples_per_prompt = 1;
  ro.max_new_tokens = c.cfg.rollout.max_new_tokens;
  ro.temperature = 0;
  ro.batch_size = c.cfg.rollout.batch_size;
  set_engine_options(ro, c.cfg.rollout);
  ro.chat_template = c.chat_template;
  ro.stop_token_ids = c.cfg.rollout.stop_token_ids;
  c.policy->train(false);
  // With an environment the evaluation plays its episodes (success = the environment's verdict).
  const auto play = [&](const rollout::RolloutOptions& o) {
    return c.env ? env::run_episodes(*c.policy, *c.tok, *c.env, *c.env_pool, prompts, o, c.episode)
                 : rollout::generate_rollouts(*c.policy, *c.tok, prompts, o);
  };
  const auto greedy = play(ro);
  const auto g1 = score(*c.reward, greedy, c.step);
  Metrics m;
  m["eval/reward_mean"] = g1.rewards.to(torch::kFloat).mean().item<double>();
  // pass@k counts the verifiers' correctness; a reward with no verifier has none to count.
  if (!g1.correct.defined()) return m;
  m["eval/pass@1"] = g1.correct.to(torch::kFloat).mean().item<double>();
  if (c.cfg.eval.k > 1) {
    ro.samples_per_prompt = c.cfg.eval.k;
    ro.temperature = c.cfg.rollout.temperature > 0 ? c.cfg.rollout.temperature : 1.0;
    ro.seed = 0xEEu;  // fixed: evaluations are comparable across steps
    const auto sampled = play(ro);
    const auto ck = score(*c.reward, sampled, c.step).correct.to(torch::kFloat);
    auto solved = torch::zeros({static_cast<int64_t>(n)});
    solved.index_add_(0, sampled.group_ids, ck);
    m[fmt::format("eval/pass@{}", c.cfg.eval.k)] = (solved > 0).to(torch::kFloat).mean().item<double>();
    // pass@1 estimated from the k samples at the rollout temperature (the sampled policy's accuracy).
    m["eval/mean@k"] = ck.mean().item<double>();
  }
  return m;
}

Metrics evaluate_pairs(RunState& c) {
  const auto& evalset = c.data->eval_set();
  const size_t n = std::min(evalset.size(), static_cast<size_t>(c.cfg.eval.num_prompts));
  if (n == 0) return {};
  const std::vector<data::PromptRecord> records(evalset.begin(), evalset.begin() + static_cast<long>(n));
  const auto [cb, rb] = encode_pairs(c, records, [](size_t i) { return static_cast<uint64_t>(i); });
  c.policy->train(false);
  const auto seq = [&](models::Transformer& m, const learner::SequenceBatch& b) {
    models::LogprobOptions lo;
    lo.padding_free = c.cfg.batch.padding_free;
    return learner::sequence_logp(learner::no_grad_logprobs(m, b, c.cfg.batch.micro_batch_size, lo).logprobs,
                                  b.response_mask);
  };
  auto margin = seq(*c.policy, cb) - seq(*c.policy, rb);
  if (c.reference) margin = margin - (seq(*c.reference, cb) - seq(*c.reference, rb));
  Metrics m;
  m["eval/pair_accuracy"] = (margin > 0).to(torch::kFloat).mean().item<double>();
  m["eval/pair_margin"] = c.dpo_opts.beta * margin.mean().item<double>();
  return m;
}

}  // namespace keel::loop
