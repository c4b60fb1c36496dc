// A-GRAE (see agrae.h).
#include "trainer/credit/agrae.h"

#include <algorithm>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

AdvantageOutput advantage_agrae(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "agrae");
  reject_kl_rewards(in, "agrae");
  const AgraeOptions& o = opts.agrae;
  TORCH_CHECK(o.easy_term == "sqrt_one_minus_p" || o.easy_term == "one_minus_sqrt_p",
              "agrae: unknown easy_term '", o.easy_term, "' (known: one_minus_sqrt_p, sqrt_one_minus_p)");
  const at::Tensor m = float_mask(in);
  const at::Tensor r = sequence_rewards(in.token_rewards);
  const int64_t n = r.size(0);
  // ω (eq. 11): the batch success rate. INTERPRETATION (spec): non-binary rewards are scaled by r_max.
  const double omega_batch = n ? r.mean().item<double>() / o.r_max : 0.0;
  double omega = omega_batch;
  if (auto it = in.state.find(kAgraeOmegaKey); it != in.state.end() && o.omega_momentum > 0)
    omega = o.omega_momentum * it->second + (1 - o.omega_momentum) * omega_batch;
  omega = std::clamp(omega, 0.0, 1.0);  // INTERPRETATION: ω is a success rate; keep it in [0, 1]

  at::Tensor a = grpo_scores(r, in.group_ids, opts, opts.norm_by_std, "agrae");
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor p = (group_stats(r, idx).mean.index_select(0, idx.inverse) / o.r_max).clamp(0, 1);
  const at::Tensor inside = (p > 0) & (p < 1);  // p ∈ {0,1}: A is 0 anyway, never evaluate 1/√0
  const at::Tensor ps = torch::where(inside, p, torch::full({}, 0.5, p.options()));
  at::Tensor factor;  // (eq. 12) hard-focused + easy-focused weights
  if (o.easy_term == "sqrt_one_minus_p") {
    factor = (omega / 2) / ps.sqrt() + ((1 - omega) / 2) / (1 - ps).sqrt();
  } else {  // released code: 0.5·A/(√p+ε)·ω + 0.5·A/(1−√p+ε)·(1−ω)
    factor = (omega / 2) / (ps.sqrt() + opts.eps) + ((1 - omega) / 2) / (1 - ps.sqrt() + opts.eps);
  }
  a = torch::where(inside, a * factor, a);
  const double attenuation = std::min(1.0, omega / o.alpha);  // (eq. 13)
  a = torch::where(a > 0, a * attenuation, a);

  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  out.metrics["agrae/omega"] = omega;
  out.metrics["agrae/omega_batch"] = omega_batch;
  out.metrics["agrae/positive_scale"] = attenuation;
  out.state[kAgraeOmegaKey] = omega;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
