// OpenRS pairwise rubric aggregation (see openrs.h).
#include "rewards/schemes/openrs.h"

#include <torch/torch.h>

#include "base/reader.h"

namespace keel::rewards {

double openrs_signed_score(char winner, double score) {
  if (winner == 'A' || winner == 'a') return std::abs(score);
  if (winner == 'B' || winner == 'b') return -std::abs(score);
  return 0.0;
}

at::Tensor openrs_aggregate(const at::Tensor& types, const at::Tensor& signed_scores, const at::Tensor& mask,
                            const OpenRsOptions& o) {
  TORCH_CHECK(signed_scores.dim() == 2 && types.sizes() == signed_scores.sizes(), "openrs: types ", types.sizes(),
              " and signed_scores ", signed_scores.sizes(), " must both be [P, K]");
  const at::Tensor s = signed_scores.to(torch::kFloat64);
  at::Tensor active = s != 0;
  if (mask.defined()) active = active.logical_and(mask.to(torch::kBool));
  const at::Tensor fatal = active.logical_and(types == static_cast<int64_t>(OpenRsType::kFatal));
  const at::Tensor has_fatal = fatal.any(1);
  const at::Tensor fatal_sum = s.masked_fill(fatal.logical_not(), 0.0).sum(1);
  // Weight per criterion by type (fatal weight is irrelevant: fatal criteria never reach this branch
  // with a non-zero score).
  const at::Tensor table = torch::tensor({0.0, o.w_core, o.w_important, o.w_highlight}, torch::kFloat64);
  const at::Tensor w = table.index_select(0, types.clamp(0, 3).reshape(-1)).view(types.sizes());
  const at::Tensor wm = w.masked_fill(active.logical_not(), 0.0);
  at::Tensor weighted = (wm * s).sum(1) / (wm.sum(1) + o.eps);
  at::Tensor out = torch::where(has_fatal, fatal_sum, weighted);
  if (o.min_score > 0) out = out.masked_fill(out.abs() < o.min_score, 0.0);
  return out;
}

at::Tensor openrs_bidirectional(const at::Tensor& s_forward, const at::Tensor& s_backward, const OpenRsOptions& o) {
  TORCH_CHECK(s_forward.sizes() == s_backward.sizes(), "openrs: s_forward ", s_forward.sizes(), " != s_backward ",
              s_backward.sizes());
  const double m = o.min_score;
  const at::Tensor a = (s_forward > m).logical_and(s_backward <= -m);
  const at::Tensor b = (s_backward > m).logical_and(s_forward <= -m);
  return a.to(torch::kLong) - b.logical_and(a.logical_not()).to(torch::kLong);
}

at::Tensor openrs_guardrail(const at::Tensor& pvr, const at::Tensor& rubric) {
  TORCH_CHECK(pvr.sizes() == rubric.sizes(), "openrs: pvr ", pvr.sizes(), " != rubric ", rubric.sizes());
  return torch::where(pvr != 0, pvr, rubric);
}

at::Tensor openrs_round_robin_reward(const at::Tensor& verdicts) {
  TORCH_CHECK(verdicts.dim() == 3 && verdicts.size(1) == verdicts.size(2), "openrs: verdicts must be [B, G, G], got ",
              verdicts.sizes());
  const int64_t g = verdicts.size(1);
  const at::Tensor v = verdicts.to(torch::kFloat64);
  const at::Tensor off = 1.0 - torch::eye(g, v.options());
  if (g < 2) return torch::zeros({v.size(0), g}, v.options());
  return (v * off).sum(2) / static_cast<double>(g - 1);
}

void read_openrs_options(config::Reader& r, OpenRsOptions& o) {
  r.field("w_core", o.w_core, "weight of core criteria").ge(0);
  r.field("w_important", o.w_important, "weight of important criteria").ge(0);
  r.field("w_highlight", o.w_highlight, "weight of highlight criteria").ge(0);
  r.field("min_score", o.min_score, "|S| below this is a tie; also the bidirectional margin").ge(0);
  r.field("eps", o.eps, "added to the weight sum").ge(0);
}

}  // namespace keel::rewards
