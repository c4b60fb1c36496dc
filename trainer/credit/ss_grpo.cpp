// SS-GRPO (see ss_grpo.h).
#include "trainer/credit/ss_grpo.h"

#include <cmath>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"

namespace keel::credit {

at::Tensor ss_stage_returns(const at::Tensor& stage_rewards, const at::Tensor& present, const std::vector<double>& lambda) {
  const int64_t k = stage_rewards.size(1);
  TORCH_CHECK(static_cast<int64_t>(lambda.size()) == k * k, "ss_grpo: advantage.ss.lambda must be ", k, "x", k,
              " (", k * k, " numbers) for ", k, " stages, got ", lambda.size(), " numbers");
  const at::Tensor lam = torch::tensor(lambda, torch::kDouble).view({k, k}).triu().to(stage_rewards.scalar_type());
  const at::Tensor r = stage_rewards * present.to(stage_rewards.scalar_type());
  return r.matmul(lam.t());  // G[i,k] = Σ_j R[i,j]·Λ[k,j], j ≥ k
}

AdvantageOutput advantage_ss_grpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "ss_grpo");
  reject_kl_rewards(in, "ss_grpo");
  const int64_t n = in.token_rewards.size(0);
  TORCH_CHECK(in.stage_rewards.defined() && in.stage_rewards.dim() == 2 && in.stage_rewards.size(0) == n,
              "ss_grpo needs AdvantageInputs::stage_rewards [N, K] with N = ", n);
  require_field(in.stage_ids, in.token_rewards.sizes(), "stage_ids", "ss_grpo");
  const auto dt = in.token_rewards.scalar_type();
  const at::Tensor sr = in.stage_rewards.to(dt);
  const int64_t k = sr.size(1);
  at::Tensor present = torch::ones({n, k}, sr.options().dtype(torch::kBool));
  if (in.stage_present.defined()) {
    require_field(in.stage_present, {n, k}, "stage_present", "ss_grpo");
    present = in.stage_present.to(torch::kBool);
  }
  const at::Tensor g = ss_stage_returns(sr.to(torch::kDouble), present, opts.ss.lambda);  // [N, K] float64
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor lone = lone_rows(idx);  // [N]
  check_singletons(lone, opts, "ss_grpo");
  std::vector<at::Tensor> cols;
  for (int64_t s = 0; s < k; ++s)
    cols.push_back(normalise_within_groups(g.select(1, s), idx, present.select(1, s), lone, opts).to(dt));
  const at::Tensor a_stage = k ? torch::stack(cols, 1) : torch::zeros({n, 0}, sr.options());  // [N, K]
  const at::Tensor sid = in.stage_ids.to(torch::kLong);
  const at::Tensor in_range = (sid >= 0) & (sid < k);
  const at::Tensor a_tok = k ? a_stage.gather(1, sid.clamp(0, std::max<int64_t>(k - 1, 0))) : torch::zeros_like(sr);
  const at::Tensor m = float_mask(in);
  AdvantageOutput out;
  out.advantages = torch::where(in_range, a_tok, torch::zeros({}, a_tok.options())) * m;
  out.returns = out.advantages;
  for (int64_t s = 0; s < k; ++s)
    out.metrics["ss/stage" + std::to_string(s) + "_return_mean"] =
        present.select(1, s).any().item<bool>() ? g.select(1, s).masked_select(present.select(1, s)).mean().item<double>() : 0.0;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
