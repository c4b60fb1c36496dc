// PRM step scores and aggregation (see prm.h).
#include "rewards/schemes/prm.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

at::Tensor prm_step_probs(const at::Tensor& logits, int64_t good_id, int64_t bad_id) {
  TORCH_CHECK(logits.dim() == 3, "prm_step_probs: logits must be [N, T, V], got ", logits.sizes());
  TORCH_CHECK(good_id >= 0 && good_id < logits.size(2) && bad_id >= 0 && bad_id < logits.size(2),
              "prm_step_probs: label ids ", good_id, ", ", bad_id, " out of vocabulary ", logits.size(2));
  return prm_two_way_prob(logits.select(2, good_id), logits.select(2, bad_id));
}

at::Tensor prm_two_way_prob(const at::Tensor& logit_good, const at::Tensor& logit_bad) {
  TORCH_CHECK(logit_good.sizes() == logit_bad.sizes(), "prm: good ", logit_good.sizes(), " != bad ", logit_bad.sizes());
  const auto dtype = logit_good.is_floating_point() ? logit_good.scalar_type() : torch::kFloat32;
  return torch::sigmoid(logit_good.to(dtype) - logit_bad.to(dtype));
}

at::Tensor prm_aggregate(const at::Tensor& p, const at::Tensor& step_mask, const std::string& method) {
  TORCH_CHECK(p.dim() == 2, "prm_aggregate: p must be [N, S], got ", p.sizes());
  const at::Tensor m = step_mask.defined() ? step_mask.to(torch::kBool) : torch::ones(p.sizes(), p.options().dtype(torch::kBool));
  TORCH_CHECK(m.sizes() == p.sizes(), "prm_aggregate: step_mask ", m.sizes(), " != p ", p.sizes());
  const at::Tensor has = m.any(1);
  const at::Tensor zero = torch::zeros({p.size(0)}, p.options());
  at::Tensor out;
  if (method == "min") {
    out = p.masked_fill(m.logical_not(), std::numeric_limits<double>::infinity()).amin(1);
  } else if (method == "prod") {
    out = p.masked_fill(m.logical_not(), 1.0).prod(1);
  } else if (method == "mean") {
    const at::Tensor w = m.to(p.scalar_type());
    out = (p * w).sum(1) / w.sum(1).clamp_min(1.0);
  } else if (method == "last") {
    const at::Tensor idx = torch::arange(p.size(1), torch::kLong).expand_as(m);
    const at::Tensor last = idx.masked_fill(m.logical_not(), -1).amax(1).clamp_min(0);
    out = p.size(1) == 0 ? zero : p.gather(1, last.unsqueeze(1)).squeeze(1);
  } else {
    fail("unknown PRM aggregate '{}' (known: min, prod, last, mean)", method);
  }
  return torch::where(has, out, zero);
}

at::Tensor prm_dense_rewards(const at::Tensor& p, const at::Tensor& step_mask, const PrmOptions& o) {
  TORCH_CHECK(p.dim() == 2 && step_mask.sizes() == p.sizes(), "prm_dense_rewards: p ", p.sizes(), " and step_mask ",
              step_mask.sizes(), " must both be [N, S]");
  const at::Tensor m = step_mask.to(torch::kBool);
  at::Tensor out = p;
  if (o.differenced) {
    const at::Tensor prev = torch::cat({torch::full({p.size(0), 1}, o.first_prev, p.options()), p.slice(1, 0, -1)}, 1);
    out = p - prev;
  }
  return out.masked_fill(m.logical_not(), 0.0);
}

void read_prm_options(config::Reader& r, PrmOptions& o) {
  r.field("step_boundary", o.step_boundary, "how steps are delimited").one_of({"newline", "tag"}, "step_boundary");
  r.field("tag_token", o.tag_token, "step tag token text (step_boundary: tag)").nonempty();
  r.field("label_tokens", o.label_tokens, "[good, bad] label token texts read at each step end");
  r.field("aggregate", o.aggregate, "solution score from step scores").one_of({"min", "prod", "last", "mean"}, "aggregate");
  r.field("dense", o.dense, "put each step score on its last token instead of aggregating");
  r.field("differenced", o.differenced, "dense: reward p_t - p_(t-1)");
  r.field("first_prev", o.first_prev, "dense+differenced: the p_0 before the first step").ge(0).le(1);
  if (o.label_tokens.size() != 2) r.error("label_tokens", fmt::format("expected [good, bad], got {} tokens", o.label_tokens.size()));
}

}  // namespace keel::rewards
