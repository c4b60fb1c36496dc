// p3o_v1 / p3o_v2: Pairwise Proximal Policy Optimization (spec §7; Wu et al. arXiv 2310.00212).
// No reference code exists; both clipped forms are the spec's INTERPRETATION of "V1 separate
// clipping / V2 joint clipping". Declared in policy_loss.h.
//
// Both work on trajectory-wise (sequence) quantities per row n:
//   a_n      = masked mean of the row's advantages (they are broadcast, so = the sample advantage)
//   Δlog_n   = clamp(Σ_t m·(logp − logp_old), ±20);   ρ_n = exp(Δlog_n)
// and are averaged over pairs. INTERPRETATION (spec §7 leaves G > 2 open): the number of pairs is
// taken as N'/2 (global non-empty rows / 2), exact for G = 2 and equal to "mean over a group's
// pairs, groups weighted by G/2" for larger G; the advantages are expected in the spec's pairwise
// form (r̃_n − mean_g r̃)·G/(2(G−1)) — half the RLOO advantage, so estimator rloo doubles the step.
#include "trainer/learner/policy_loss.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace keel::learner {

namespace {

struct SeqTerms {
  torch::Tensor adv;        // [N] a_n
  torch::Tensor log_ratio;  // [N] Δlog_n, clamped
  torch::Tensor nonempty;   // [N] bool, len_n > 0
};

SeqTerms sequence_terms(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  const auto dtype = in.logp.scalar_type();
  const torch::Tensor m = in.response_mask.to(dtype);  // [N, T]
  const torch::Tensor len = m.sum(1);                  // [N]
  const torch::Tensor adv = in.advantages.detach().to(dtype);
  const torch::Tensor diff = in.logp - in.logp_old.detach().to(dtype);
  SeqTerms t;
  t.adv = torch::where(m > 0, adv * m, torch::zeros_like(adv)).sum(1) / len.clamp_min(1);
  t.log_ratio =
      torch::where(m > 0, diff * m, torch::zeros_like(diff)).sum(1).clamp(-opts.log_ratio_clamp, opts.log_ratio_clamp);
  t.nonempty = len > 0;
  return t;
}

// Number of pairs of the mini-batch, N'/2 (0 → the loss is an exact 0).
double pair_count(const AggContext& ctx) { return ctx.seqs > 0 ? ctx.seqs / 2.0 : 1.0; }

}  // namespace

LossOutput p3o_v1_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  check_policy_loss_inputs(in, "p3o_v1");
  const SeqTerms s = sequence_terms(in, opts);
  const torch::Tensor rho = s.log_ratio.exp();  // [N]
  const torch::Tensor unclipped = rho * s.adv;
  const torch::Tensor clipped = rho.clamp(1.0 - opts.clip_low, 1.0 + opts.clip_high) * s.adv;
  // Per response −min(ρA, clip(ρ)A); a pair's loss is the sum of its two responses' terms.
  const torch::Tensor per_seq = torch::where(s.nonempty, -torch::minimum(unclipped, clipped), torch::zeros_like(rho));
  const torch::Tensor pg = per_seq.sum() / pair_count(in.agg);
  std::map<std::string, double> metrics;
  const torch::Tensor ne = s.nonempty.to(torch::kDouble);
  const double n_ne = std::max(ne.sum().item<double>(), 1.0);
  metrics["actor/pg_clipfrac"] = ((clipped < unclipped).to(torch::kDouble) * ne).sum().item<double>() / n_ne;
  metrics["actor/ppo_kl"] = (-s.log_ratio.detach().to(torch::kDouble) * ne).sum().item<double>() / n_ne;
  return finish_policy_loss(pg, std::move(metrics), in, opts);
}

LossOutput p3o_v2_loss(const PolicyLossInputs& in, const PolicyLossOptions& opts) {
  check_policy_loss_inputs(in, "p3o_v2");
  TORCH_CHECK(in.group_ids.defined(), "p3o_v2: group_ids [N] is required (pairs are formed within groups)");
  const SeqTerms s = sequence_terms(in, opts);
  // Members (non-empty rows) of each group, in row order; all pairs i < j within a group.
  const torch::Tensor gid = in.group_ids.to(torch::kCPU).to(torch::kLong).contiguous();
  const torch::Tensor ne = s.nonempty.to(torch::kCPU).contiguous();
  const int64_t* g = gid.data_ptr<int64_t>();
  const bool* keep = ne.data_ptr<bool>();
  std::unordered_map<int64_t, std::vector<int64_t>> members;
  std::vector<int64_t> order;  // first-seen group order (deterministic)
  for (int64_t n = 0; n < gid.size(0); ++n) {
    if (!keep[n]) continue;
    auto [it, inserted] = members.try_emplace(g[n]);
    if (inserted) order.push_back(g[n]);
    it->second.push_back(n);
  }
  std::vector<int64_t> ii, jj;
  std::vector<double> group_size;
  for (int64_t key : order) {
    const auto& rows = members[key];
    for (size_t a = 0; a < rows.size(); ++a)
      for (size_t b = a + 1; b < rows.size(); ++b) {
        ii.push_back(rows[a]);
        jj.push_back(rows[b]);
        group_size.push_back(static_cast<double>(rows.size()));
      }
  }
  std::map<std::string, double> metrics;
  const auto dtype = in.logp.scalar_type();
  const auto dev = in.logp.device();
  torch::Tensor pg;
  if (ii.empty()) {
    pg = (in.logp * 0).sum();  // no pair: exact 0, graph kept
    metrics["actor/pg_clipfrac"] = 0.0;
  } else {
    const auto idx_opts = torch::TensorOptions().dtype(torch::kLong);
    const torch::Tensor ti = torch::tensor(ii, idx_opts).to(dev);
    const torch::Tensor tj = torch::tensor(jj, idx_opts).to(dev);
    const torch::Tensor gs = torch::tensor(group_size, torch::TensorOptions().dtype(torch::kDouble)).to(dev).to(dtype);
    // d = δ_ij/2 = (a_i − a_j)·(G−1)/G; for G = 2 and a = ±δ/2 this is δ/2 exactly.
    const torch::Tensor d = (s.adv.index_select(0, ti) - s.adv.index_select(0, tj)) * (gs - 1) / gs;
    // ρ_ij = ρ_i/ρ_j, log clamped to ±20 again (INTERPRETATION: the pair ratio gets the same guard).
    const torch::Tensor rho =
        (s.log_ratio.index_select(0, ti) - s.log_ratio.index_select(0, tj))
            .clamp(-opts.log_ratio_clamp, opts.log_ratio_clamp)
            .exp();
    const torch::Tensor unclipped = rho * d;
    const torch::Tensor clipped = rho.clamp(1.0 - opts.clip_low, 1.0 + opts.clip_high) * d;
    const torch::Tensor per_pair = -torch::minimum(unclipped, clipped);  // [P]
    // Weight 2/((G−1)·N'): mean over a group's G(G−1)/2 pairs, groups weighted by G/2, over N'/2.
    const torch::Tensor w = 2.0 / ((gs - 1) * (in.agg.seqs > 0 ? in.agg.seqs : 1.0));
    pg = (per_pair * w).sum();
    metrics["actor/pg_clipfrac"] = (clipped < unclipped).to(torch::kDouble).mean().item<double>();
  }
  const torch::Tensor ned = s.nonempty.to(torch::kDouble);
  metrics["actor/ppo_kl"] =
      (-s.log_ratio.detach().to(torch::kDouble) * ned).sum().item<double>() / std::max(ned.sum().item<double>(), 1.0);
  return finish_policy_loss(pg, std::move(metrics), in, opts);
}

}  // namespace keel::learner
