// THR / NTHR (see thr.h).
#include "trainer/credit/thr.h"

#include <algorithm>
#include <limits>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

std::pair<at::Tensor, at::Tensor> thr_prediction_errors(const at::Tensor& token_ids, const at::Tensor& probs,
                                                        const at::Tensor& mask, const at::Tensor& group_ids) {
  TORCH_CHECK(token_ids.dim() == 2 && mask.sizes() == token_ids.sizes(), "thr_prediction_errors: token_ids and mask "
              "must be [N, T], got ", token_ids.sizes(), " and ", mask.sizes());
  TORCH_CHECK(probs.dim() == 3 && probs.size(0) == token_ids.size(0) && probs.size(1) == token_ids.size(1),
              "thr_prediction_errors: probs must be [N, T, V] with [N, T] = ", token_ids.sizes(), ", got ", probs.sizes());
  const at::Tensor valid = mask != 0;
  const at::Tensor y = token_ids.to(torch::kLong);
  const at::Tensor vocab = std::get<0>(at::_unique(y.masked_select(valid), /*sorted=*/true, /*return_inverse=*/false));
  const int64_t u = vocab.numel();
  if (u == 0) return {torch::zeros({y.size(0), y.size(1), 0}, probs.options()), vocab};
  // column of each token id (only meaningful for valid tokens)
  const at::Tensor col = torch::searchsorted(vocab, y.flatten()).clamp_max(std::max<int64_t>(u - 1, 0)).view_as(y);
  const GroupIndex idx = group_index(group_ids);
  // in_group[g, u]: token vocab[u] occurs in a valid token of group g
  at::Tensor in_group = torch::zeros({idx.num_groups, u}, probs.options());
  const at::Tensor row_group = idx.inverse.unsqueeze(1).expand_as(y);
  in_group.index_put_({row_group.masked_select(valid), col.masked_select(valid)},
                      torch::ones({}, probs.options()));
  const at::Tensor q = probs.index_select(2, vocab);                          // [N, T, U]
  const at::Tensor onehot = torch::zeros_like(q).scatter_(2, col.unsqueeze(2), 1.0);
  const at::Tensor keep = in_group.index_select(0, idx.inverse).unsqueeze(1) *  // [N, 1, U]
                          valid.unsqueeze(2).to(q.scalar_type());               // [N, T, 1]
  return {(onehot - q) * keep, vocab};
}

at::Tensor thr_token_scores(const at::Tensor& hidden, const at::Tensor& pred_errors, const at::Tensor& mask,
                            const at::Tensor& group_ids, const at::Tensor& positive) {
  TORCH_CHECK(hidden.dim() == 3 && hidden.size(0) == mask.size(0) && hidden.size(1) == mask.size(1),
              "thr_token_scores: hidden_states must be [N, T, D] with [N, T] = ", mask.sizes(), ", got ", hidden.sizes());
  TORCH_CHECK(pred_errors.dim() == 3 && pred_errors.size(0) == mask.size(0) && pred_errors.size(1) == mask.size(1),
              "thr_token_scores: pred_errors must be [N, T, U] with [N, T] = ", mask.sizes(), ", got ",
              pred_errors.sizes());
  const auto acc = hidden.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;  // fp32 accumulation
  const at::Tensor h = hidden.to(acc), g = pred_errors.to(acc);
  const at::Tensor w = (mask != 0).to(acc);
  const at::Tensor pos = positive.to(torch::kBool);
  const GroupIndex idx = group_index(group_ids);
  at::Tensor s = torch::zeros(mask.sizes(), h.options());
  for (int64_t grp = 0; grp < idx.num_groups; ++grp) {
    const at::Tensor rows = (idx.inverse == grp).nonzero().squeeze(1);
    const at::Tensor gr = g.index_select(0, rows), hr = h.index_select(0, rows);
    const at::Tensor wp = w.index_select(0, rows) * pos.index_select(0, rows).to(acc).unsqueeze(1);  // positive tokens
    const at::Tensor m_plus = torch::einsum("ntu,ntd->ud", {gr * wp.unsqueeze(2), hr});             // [U, D]
    const at::Tensor sr = torch::einsum("ntu,ud,ntd->nt", {gr, m_plus, hr}) * w.index_select(0, rows);
    s.index_copy_(0, rows, sr);
  }
  return s;
}

AdvantageOutput advantage_thr(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "thr");
  reject_kl_rewards(in, "thr");
  const ThrOptions& o = opts.thr;
  TORCH_CHECK(o.mode == "reweight" || o.mode == "thr_only" || o.mode == "nthr", "thr: unknown mode '", o.mode,
              "' (known: nthr, reweight, thr_only)");
  TORCH_CHECK(o.p > -1 && o.p < 1, "thr: p must be in (-1, 1) so weights stay positive, got ", o.p);
  const at::Tensor m = float_mask(in);
  const auto dt = in.token_rewards.scalar_type();
  const at::Tensor r = sequence_rewards(in.token_rewards);
  const int64_t n = r.size(0);
  at::Tensor positive;
  if (in.correctness.defined()) {
    require_field(in.correctness, {n}, "correctness", "thr");
    positive = in.correctness.to(torch::kBool);
  } else {
    positive = r >= o.correct_threshold;
  }
  at::Tensor s;
  if (in.token_scores.defined()) {
    require_field(in.token_scores, m.sizes(), "token_scores", "thr");
    s = in.token_scores.to(dt) * m;
  } else {
    TORCH_CHECK(in.hidden_states.defined() && in.pred_errors.defined(),
                "thr needs AdvantageInputs::token_scores [N, T], or hidden_states [N, T, D] and pred_errors [N, T, U]");
    s = thr_token_scores(in.hidden_states, in.pred_errors, m, in.group_ids, positive).to(dt);
  }
  const at::Tensor a = grpo_scores(r, in.group_ids, opts, opts.norm_by_std, "thr");

  // Per group: N⁺, G, and the anchor τ = β·min over correct non-empty responses of their mean score.
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor posf = positive.to(dt);
  const at::Tensor n_pos = torch::zeros({idx.num_groups}, r.options()).index_add_(0, idx.inverse, posf);
  const at::Tensor n_all = group_stats(r, idx).count;
  const at::Tensor len = m.sum(1);
  const at::Tensor mean_s = s.sum(1) / len.clamp_min(1);
  const at::Tensor anchor_rows = positive & (len > 0);
  const double inf = std::numeric_limits<double>::infinity();
  const at::Tensor tau_g = o.beta * torch::full({idx.num_groups}, inf, r.options())
                                        .scatter_reduce(0, idx.inverse, torch::where(anchor_rows, mean_s, torch::full({}, inf, r.options())),
                                                        "amin", /*include_self=*/true);
  const at::Tensor active_g = (n_pos > 0) & (n_pos < n_all) & torch::isfinite(tau_g);
  const at::Tensor tau = tau_g.index_select(0, idx.inverse).unsqueeze(1);     // [N, 1]
  const at::Tensor active = active_g.index_select(0, idx.inverse).unsqueeze(1);  // [N, 1]
  const at::Tensor a_tok = a.unsqueeze(1).expand_as(m);

  at::Tensor weight;  // [N, T] multiplier of A_n
  if (o.mode == "reweight") {
    const at::Tensor dominant = s.abs() > tau;
    const at::Tensor sign = torch::sign(a_tok) * torch::sign(s);
    weight = torch::where(dominant, 1 + o.p * sign, torch::ones({}, r.options()));
  } else if (o.mode == "thr_only") {
    weight = (s.abs() > tau).to(dt);
  } else {  // nthr
    const at::Tensor eta = (2 * (0.5 - n_pos / n_all.clamp_min(1)).abs()).index_select(0, idx.inverse).unsqueeze(1);
    const at::Tensor hit = (~positive).unsqueeze(1) & (s > tau);
    weight = torch::where(hit, eta.expand_as(m), torch::ones({}, r.options()));
  }
  weight = torch::where(active, weight, torch::ones({}, r.options()));

  AdvantageOutput out;
  out.advantages = a_tok * weight * m;
  out.returns = out.advantages;
  const double valid = m.sum().item<double>();
  out.metrics["thr/reweighted_frac"] = valid > 0 ? ((weight != 1).to(dt) * m).sum().item<double>() / valid : 0.0;
  out.metrics["thr/active_groups"] = active_g.sum().item<double>();
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
