// DPO family losses, MAH-DPO aggregation and head helpers (spec §8.1, §8.2). See dpo_loss.h.
// Sources: TRL dpo_trainer.py (loss types), OpenRLHF DPOLoss, pearls-lab/multiobj-align
// mahdpo_trainers.py; Rafailov et al. 2023 (DPO), Mitchell 2023 (cDPO), Chowdhury et al. 2024
// (robust DPO), Azar et al. 2023 (IPO), Zhao et al. 2023 (SLiC hinge).
#include "trainer/learner/dpo_loss.h"

#include <utility>

#include "trainer/config/credit_config.h"

namespace keel::learner {

DpoAggContext DpoAggContext::count(int64_t num_pairs, const torch::Tensor& head_ids, int64_t heads) {
  DpoAggContext c;
  c.pairs = static_cast<double>(num_pairs);
  if (head_ids.defined()) {
    TORCH_CHECK(heads >= 1, "DpoAggContext::count: heads must be >= 1, got ", heads);
    TORCH_CHECK(head_ids.dim() == 1 && head_ids.size(0) == num_pairs, "DpoAggContext::count: head_ids must be [",
                num_pairs, "], got ", head_ids.sizes());
    const torch::Tensor ids = head_ids.to(torch::kCPU).to(torch::kLong);
    TORCH_CHECK(num_pairs == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < heads),
                "DpoAggContext::count: head_ids must lie in [0, ", heads, ")");
    const torch::Tensor counts = torch::bincount(ids, /*weights=*/{}, heads).to(torch::kDouble);
    for (int64_t k = 0; k < heads; ++k) c.head_pairs.push_back(counts[k].item<double>());
  }
  return c;
}

DpoAggContext& DpoAggContext::operator+=(const DpoAggContext& o) {
  pairs += o.pairs;
  if (head_pairs.size() < o.head_pairs.size()) head_pairs.resize(o.head_pairs.size(), 0.0);
  for (size_t k = 0; k < o.head_pairs.size(); ++k) head_pairs[k] += o.head_pairs[k];
  return *this;
}

DpoOptions dpo_options(const config::DpoSection& dpo) {
  DpoOptions o;
  o.beta = dpo.beta;
  o.label_smoothing = dpo.label_smoothing;
  o.ipo_length_norm = dpo.ipo_length_norm;
  return o;
}

torch::Tensor dpo_pair_losses(DpoKind kind, const torch::Tensor& delta, const DpoOptions& opts) {
  TORCH_CHECK(opts.beta > 0, "dpo: beta must be > 0, got ", opts.beta);
  const double eps = opts.label_smoothing;
  const torch::Tensor z = opts.beta * delta;  // βΔ
  switch (kind) {
    case DpoKind::kSigmoid:
    case DpoKind::kCdpo:
      // logsigmoid, never log(sigmoid): stable for large |βΔ|.
      return -(1.0 - eps) * torch::log_sigmoid(z) - eps * torch::log_sigmoid(-z);
    case DpoKind::kRobust:
      TORCH_CHECK(eps >= 0 && eps < 0.5, "dpo robust: label_smoothing must be in [0, 0.5), got ", eps);
      return (-(1.0 - eps) * torch::log_sigmoid(z) + eps * torch::log_sigmoid(-z)) / (1.0 - 2.0 * eps);
    case DpoKind::kIpo:
      return (delta - 1.0 / (2.0 * opts.beta)).pow(2);
    case DpoKind::kHinge:
      return torch::relu(1.0 - z);
  }
  TORCH_CHECK(false, "dpo: bad loss kind");
}

LossOutput dpo_loss(DpoKind kind, const DpoInputs& in, const DpoOptions& opts) {
  TORCH_CHECK(in.chosen_logp.defined() && in.chosen_logp.dim() == 1, "dpo: chosen_logp must be [P]");
  const int64_t p = in.chosen_logp.size(0);
  auto check = [&](const torch::Tensor& t, const char* name) {
    TORCH_CHECK(!t.defined() || (t.dim() == 1 && t.size(0) == p), "dpo: ", name, " must be [", p, "], got ",
                t.defined() ? t.sizes() : c10::IntArrayRef{});
  };
  TORCH_CHECK(in.rejected_logp.defined(), "dpo: rejected_logp [P] is required");
  check(in.rejected_logp, "rejected_logp");
  check(in.chosen_ref_logp, "chosen_ref_logp");
  check(in.rejected_ref_logp, "rejected_ref_logp");
  check(in.chosen_len, "chosen_len");
  check(in.rejected_len, "rejected_len");
  check(in.head_ids, "head_ids");
  TORCH_CHECK(in.chosen_ref_logp.defined() == in.rejected_ref_logp.defined(),
              "dpo: give both chosen_ref_logp and rejected_ref_logp, or neither (reference-free)");
  TORCH_CHECK(in.agg.pairs >= static_cast<double>(p) && (p == 0 || in.agg.pairs > 0),
              "dpo: agg.pairs (", in.agg.pairs, ") must count the whole mini-batch (>= ", p, " pairs here)");

  const auto dtype = in.chosen_logp.scalar_type();
  const bool use_ref = in.chosen_ref_logp.defined() && !opts.reference_free;
  // Log-ratios against the reference (or the bare log-probs when reference-free).
  torch::Tensor chosen = in.chosen_logp;
  torch::Tensor rejected = in.rejected_logp.to(dtype);
  if (use_ref) {
    chosen = chosen - in.chosen_ref_logp.detach().to(dtype);
    rejected = rejected - in.rejected_ref_logp.detach().to(dtype);
  }
  torch::Tensor delta = chosen - rejected;  // [P] Δ
  if (kind == DpoKind::kIpo && opts.ipo_length_norm) {
    TORCH_CHECK(in.chosen_len.defined() && in.rejected_len.defined(),
                "dpo ipo with ipo_length_norm needs chosen_len and rejected_len [P]");
    // TRL: each sequence's log-prob (policy and reference) divided by its completion length.
    // Empty completion (length 0, ℓ = 0): divided by 1.
    delta = chosen / in.chosen_len.to(dtype).clamp_min(1) - rejected / in.rejected_len.to(dtype).clamp_min(1);
  }
  const torch::Tensor per_pair = dpo_pair_losses(kind, delta, opts);  // [P]

  LossOutput out;
  torch::Tensor weights;  // [P] 1/denominator of each pair
  if (in.head_ids.defined()) {
    TORCH_CHECK(!in.agg.head_pairs.empty(), "dpo: head_ids given but agg.head_pairs is empty (use DpoAggContext::count)");
    const int64_t heads = static_cast<int64_t>(in.agg.head_pairs.size());
    double present = 0;
    for (double c : in.agg.head_pairs) present += c > 0 ? 1 : 0;
    // MAH-DPO: mean over objectives present in the mini-batch of each objective's mean pair loss.
    std::vector<double> w(heads, 0.0);
    for (int64_t k = 0; k < heads; ++k)
      if (in.agg.head_pairs[k] > 0) w[k] = 1.0 / (in.agg.head_pairs[k] * present);
    const torch::Tensor ids = in.head_ids.to(torch::kLong);
    TORCH_CHECK(p == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < heads),
                "dpo: head_ids must lie in [0, ", heads, ")");
    weights = torch::tensor(w, torch::TensorOptions().dtype(torch::kDouble)).to(per_pair.device()).to(dtype)
                  .index_select(0, ids.to(per_pair.device()));
    const torch::Tensor local = per_pair.detach().to(torch::kDouble).cpu();
    const torch::Tensor ids_cpu = ids.cpu();
    for (int64_t k = 0; k < heads; ++k) {
      const torch::Tensor sel = ids_cpu == k;
      const double n = sel.sum().item<double>();
      if (n > 0) out.metrics["dpo/loss_head" + std::to_string(k)] = local.masked_select(sel).sum().item<double>() / n;
    }
  } else {
    weights = torch::full({p}, 1.0 / (in.agg.pairs > 0 ? in.agg.pairs : 1.0), per_pair.options());
  }
  out.loss = (per_pair * weights).sum();
  out.metrics["dpo/loss"] = out.loss.item<double>();
  if (p > 0) {
    torch::NoGradGuard no_grad;
    const torch::Tensor rc = opts.beta * chosen.detach().to(torch::kDouble);
    const torch::Tensor rr = opts.beta * rejected.detach().to(torch::kDouble);
    out.metrics["rewards/chosen"] = rc.mean().item<double>();
    out.metrics["rewards/rejected"] = rr.mean().item<double>();
    out.metrics["rewards/margins"] = (rc - rr).mean().item<double>();
    out.metrics["rewards/accuracies"] = (rc > rr).to(torch::kDouble).mean().item<double>();
  }
  return out;
}

void register_builtin_dpo_losses(DpoLossRegistry& registry) {
  auto bind = [](DpoKind kind) {
    return [kind](const DpoInputs& in, const DpoOptions& o) { return dpo_loss(kind, in, o); };
  };
  registry.add("sigmoid", "DPO: -log sigmoid(beta*margin) (for label smoothing use cdpo)", bind(DpoKind::kSigmoid));
  registry.add("cdpo", "conservative DPO: label-smoothed sigmoid loss", bind(DpoKind::kCdpo));
  registry.add("robust", "robust DPO: unbiased under label noise label_smoothing", bind(DpoKind::kRobust));
  registry.add("ipo", "IPO: squared distance of the margin to 1/(2 beta)", bind(DpoKind::kIpo));
  registry.add("hinge", "SLiC hinge: relu(1 - beta*margin)", bind(DpoKind::kHinge));
}

torch::Tensor sequence_logp(const torch::Tensor& logp, const torch::Tensor& mask) {
  TORCH_CHECK(logp.dim() == 2 && mask.sizes() == logp.sizes(), "sequence_logp: logp ", logp.sizes(), " and mask ",
              mask.sizes(), " must be the same [N, T]");
  const torch::Tensor m = mask.to(logp.scalar_type());
  return torch::where(m > 0, logp * m, torch::zeros_like(logp)).sum(1);
}

torch::Tensor mah_dpo_select_head(const torch::Tensor& logp_heads, const torch::Tensor& head_ids) {
  TORCH_CHECK(logp_heads.dim() == 3, "mah_dpo_select_head: logp_heads must be [K, N, T], got ", logp_heads.sizes());
  TORCH_CHECK(head_ids.dim() == 1 && head_ids.size(0) == logp_heads.size(1),
              "mah_dpo_select_head: head_ids must be [N] = [", logp_heads.size(1), "], got ", head_ids.sizes());
  const int64_t k = logp_heads.size(0), n = logp_heads.size(1), t = logp_heads.size(2);
  const torch::Tensor ids = head_ids.to(logp_heads.device()).to(torch::kLong);
  TORCH_CHECK(n == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < k),
              "mah_dpo_select_head: head_ids must lie in [0, ", k, ")");
  // gather along K: index [1, N, T] → [N, T]
  return logp_heads.gather(0, ids.view({1, n, 1}).expand({1, n, t})).squeeze(0);
}

torch::Tensor mah_dpo_ensemble_logits(const torch::Tensor& logits, const torch::Tensor& weights) {
  TORCH_CHECK(logits.dim() >= 1, "mah_dpo_ensemble_logits: logits must be [K, ...]");
  const int64_t k = logits.size(0);
  torch::Tensor w = weights.defined() ? weights.to(logits.scalar_type()).to(logits.device())
                                      : torch::ones({k}, logits.options());
  TORCH_CHECK(w.dim() == 1 && w.size(0) == k, "mah_dpo_ensemble_logits: weights must be [K] = [", k, "], got ",
              w.sizes());
  TORCH_CHECK(w.sum().item<double>() > 0, "mah_dpo_ensemble_logits: weights must sum to > 0");
  w = w / w.sum();
  std::vector<int64_t> shape(logits.dim(), 1);
  shape[0] = k;
  return (logits * w.view(shape)).sum(0);
}

}  // namespace keel::learner
