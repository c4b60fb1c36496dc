// CMO correlation-weighted advantages (see cmo.h).
#include "rewards/schemes/cmo.h"

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "base/reader.h"

namespace keel::rewards {

CmoResult cmo_advantages(const at::Tensor& rewards, const at::Tensor& group_ids, const CmoOptions& o) {
  TORCH_CHECK(rewards.dim() == 2, "cmo: rewards must be [N, K], got ", rewards.sizes());
  TORCH_CHECK(group_ids.dim() == 1 && group_ids.size(0) == rewards.size(0), "cmo: group_ids must be [N], got ",
              group_ids.sizes());
  const at::Tensor r = rewards.to(torch::kFloat64);
  const int64_t k = r.size(1);
  const GroupIndex g = make_group_index(group_ids);
  at::Tensor adv = torch::zeros({r.size(0)}, r.options());
  at::Tensor weights = torch::ones({g.num_groups, k}, r.options());
  // Groups are independent and few; each is vectorised over its [G, K] block.
  for (int64_t gi = 0; gi < g.num_groups; ++gi) {
    const at::Tensor rows = (g.index == gi).nonzero().squeeze(1);
    const at::Tensor x = r.index_select(0, rows);  // [G, K]
    const at::Tensor valid = (x != o.pad_value).to(torch::kFloat64);
    const at::Tensor cnt = valid.sum(0).clamp_min(1.0);
    const at::Tensor mean = (x * valid).sum(0) / cnt;
    const at::Tensor var = ((x - mean).pow(2) * valid).sum(0) / cnt;
    const at::Tensor a = (x - mean) / (var + o.eps).sqrt() * valid;  // [G, K], padded -> 0
    const bool padded = (valid == 0).any().item<bool>();
    at::Tensor w;
    if (!o.attr_binding || padded || k < 2 || x.size(0) < 2) {
      w = torch::ones({k}, r.options());
    } else {
      const at::Tensor centred = x - x.mean(0);
      const at::Tensor sd = centred.pow(2).mean(0).sqrt();  // population std per concept
      const at::Tensor cov = centred.t().mm(centred) / static_cast<double>(x.size(0));
      at::Tensor rho = cov / (sd.unsqueeze(1) * sd.unsqueeze(0));
      rho = torch::nan_to_num(rho, 0.0, 0.0, 0.0);
      at::Tensor b = (rho.sum(1) - 1.0) / static_cast<double>(k - 1);
      b = torch::where(sd <= o.min_std, torch::ones_like(b), b);
      w = torch::softmax((1.0 - b) / o.temperature, 0);
    }
    weights[gi] = w;
    adv.index_copy_(0, rows, (a * w).sum(1));
  }
  if (o.batch_standardize && adv.numel() > 0) {
    const at::Tensor centred = adv - adv.mean();
    adv = centred / (centred.pow(2).mean().sqrt() + o.eps);
  }
  return CmoResult{adv, weights};
}

void read_cmo_options(config::Reader& r, CmoOptions& o) {
  r.field("temperature", o.temperature, "softmax temperature of the concept weights").gt(0);
  r.field("min_std", o.min_std, "a concept with std <= this in a group gets binding score 1").ge(0);
  r.field("pad_value", o.pad_value, "value that marks a missing concept reward");
  r.field("attr_binding", o.attr_binding, "weight concepts by their correlation (false = plain sum)");
  r.field("batch_standardize", o.batch_standardize, "re-standardise all advantages of the batch");
  r.field("eps", o.eps, "in the per-concept variance and the batch standardisation").gt(0);
}

}  // namespace keel::rewards
