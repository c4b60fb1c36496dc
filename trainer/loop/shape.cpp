#include "trainer/loop/shape.h"

#include <torch/torch.h>

#include "trainer/learner/kl.h"
#include "trainer/learner/overlong_penalty.h"
#include "trainer/loop/run_state.h"

namespace keel::loop {

at::Tensor place_on_last_token(const at::Tensor& rewards, const at::Tensor& mask) {
  auto tok = torch::zeros(mask.sizes(), torch::kFloat);
  const auto len = mask.sum(1);
  const auto last = (len - 1).clamp_min(0);
  tok.scatter_(1, last.unsqueeze(1), rewards.to(torch::kFloat).unsqueeze(1));
  return tok * (len > 0).to(torch::kFloat).unsqueeze(1);  // empty responses get nothing
}

Shaped shape(RunState& c, rollout::RolloutBatch& b, metrics::Metrics& m) {
  const auto& cfg = c.cfg;
  // Verifier accuracy before any shaping.
  m["reward/accuracy"] = (b.rewards > 0.5).to(torch::kFloat).mean().item<double>();
  if (cfg.overlong.enable) {
    const auto len = b.response_mask.sum(1).to(torch::kFloat);
    learner::OverlongOptions oo;
    oo.max_len = cfg.rollout.max_new_tokens;
    oo.buffer_len = cfg.overlong.buffer_len;
    oo.penalty_factor = cfg.overlong.penalty_factor;
    const auto pen = learner::overlong_penalty(len, oo).to(torch::kFloat);
    b.rewards = b.rewards + pen;
    m["reward/overlong_penalty_mean"] = pen.mean().item<double>();
  }
  b.token_rewards = place_on_last_token(b.rewards, b.response_mask);
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
