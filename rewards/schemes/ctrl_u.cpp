// Ctrl-U uncertainty weighting (see ctrl_u.h).
#include "rewards/schemes/ctrl_u.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

at::Tensor ctrlu_kl_uncertainty(const at::Tensor& logits1, const at::Tensor& logits2, double scale) {
  TORCH_CHECK(logits1.sizes() == logits2.sizes() && logits1.dim() >= 1, "ctrlu: logits1 ", logits1.sizes(),
              " and logits2 ", logits2.sizes(), " must match [*, C]");
  const at::Tensor lp1 = torch::log_softmax(logits1, -1);
  const at::Tensor lp2 = torch::log_softmax(logits2, -1);
  return scale * (lp2.exp() * (lp2 - lp1)).sum(-1);
}

at::Tensor ctrlu_scalar_uncertainty(const at::Tensor& r1, const at::Tensor& r2, double scale) {
  TORCH_CHECK(r1.sizes() == r2.sizes(), "ctrlu: r1 ", r1.sizes(), " != r2 ", r2.sizes());
  return scale * (r1 - r2).pow(2) / 2.0;
}

at::Tensor ctrlu_weighted_reward(const at::Tensor& r1, const at::Tensor& r2, const at::Tensor& u) {
  TORCH_CHECK(r1.sizes() == r2.sizes() && u.sizes() == r1.sizes(), "ctrlu: r1 ", r1.sizes(), ", r2 ", r2.sizes(),
              ", u ", u.sizes(), " must match");
  return (r1 + r2) / 2.0 * torch::exp(-u);
}

double ctrlu_loss_scale(int64_t step, const CtrlUOptions& o) {
  const double ramp = o.warmup_steps > 0 ? std::min(1.0, static_cast<double>(step) / static_cast<double>(o.warmup_steps)) : 1.0;
  return ramp * o.grad_scale;
}

at::Tensor ctrlu_reward_loss(const at::Tensor& loss_rew, const at::Tensor& u, const at::Tensor& active, int64_t step,
                             const CtrlUOptions& o) {
  TORCH_CHECK(loss_rew.sizes() == u.sizes(), "ctrlu: loss_rew ", loss_rew.sizes(), " != u ", u.sizes());
  at::Tensor w = active.defined() ? active.to(u.scalar_type()) : torch::ones_like(u);
  TORCH_CHECK(w.sizes() == u.sizes(), "ctrlu: active ", w.sizes(), " != u ", u.sizes());
  const at::Tensor n = w.sum().clamp_min(1.0);
  const at::Tensor weighted = (loss_rew * torch::exp(-u) * w).sum() / n;
  return ctrlu_loss_scale(step, o) * weighted + (u * w).sum() / n;
}

void read_ctrlu_options(config::Reader& r, CtrlUOptions& o) {
  r.field("method", o.method, "how the two evaluations give the uncertainty").one_of({"kl_two_pass", "scalar_sq"}, "method");
  r.field("scale", o.scale, "uncertainty scale lambda_u").ge(0);
  r.field("grad_scale", o.grad_scale, "reward-loss scale after warm-up").ge(0);
  r.field("warmup_steps", o.warmup_steps, "steps of the linear reward-loss warm-up").ge(0);
}

}  // namespace keel::rewards
