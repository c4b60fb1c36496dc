#include "trainer/loop/shape.h"

#include <torch/torch.h>

#include "trainer/learner/kl.h"
#include "rewards/schemes/dapo_overlong.h"
#include "trainer/credit/token_placement.h"
#include "trainer/loop/run_state.h"

namespace keel::loop {

Shaped shape(RunState& c, rollout::RolloutBatch& b, metrics::Metrics& m) {
  const auto& cfg = c.cfg;
  // The verifiers' accuracy (their correctness flag), before any shaping.
  if (b.correct.defined()) m["reward/accuracy"] = b.correct.mean().item<double>();
  if (cfg.overlong.enable) {
    // The overlong: section is DAPO's soft penalty (the dapo_soft reward scheme's formula) with
    // L_max = rollout.max_new_tokens.
    const auto len = b.response_mask.sum(1).to(torch::kFloat);
    rewards::DapoOverlongOptions oo;
    oo.max_len = cfg.rollout.max_new_tokens;
    oo.cache_len = cfg.overlong.buffer_len;
    oo.factor = cfg.overlong.penalty_factor;
    const auto pen = rewards::dapo_overlong_penalty(len, oo).to(torch::kFloat);
    b.rewards = b.rewards + pen;
    m["reward/overlong_penalty_mean"] = pen.mean().item<double>();
  }
  // Credit reads token rewards: the sequence reward on each row's last response token, plus the
  // reward's dense terms (b.token_rewards as scored), each on a response token.
  const at::Tensor dense = b.token_rewards;
  b.token_rewards = credit::place_sequence_rewards(b.rewards, b.response_mask);
  if (dense.defined()) {
    b.token_rewards = b.token_rewards + credit::snap_to_segment_ends(dense, b.response_mask);
    m["reward/dense_sum_mean"] = dense.sum(1).mean().item<double>();
  }
  Shaped out;
  if (cfg.kl.in_reward) {
    const auto kr = learner::apply_kl_in_reward(b.token_rewards, b.old_logprobs, b.ref_logprobs, b.response_mask,
                                                learner::parse_kl_estimator(cfg.kl.estimator), c.kl_ctl->value());
    out.kl_rewards = kr.token_rewards - b.token_rewards;
    for (const auto& [k, v] : kr.metrics) m[k] = v;
    c.kl_ctl->update(kr.current_kl, b.size());
  }
  return out;
}

}  // namespace keel::loop
