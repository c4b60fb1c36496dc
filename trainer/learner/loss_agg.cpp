// Loss aggregation with mini-batch-global denominators (spec §1.6). See loss_agg.h.
#include "trainer/learner/loss_agg.h"

#include <algorithm>

#include "base/error.h"

namespace keel::learner {

AggMode parse_agg_mode(const std::string& name) {
  if (name == "token-mean") return AggMode::kTokenMean;
  if (name == "seq-mean-token-sum") return AggMode::kSeqMeanTokenSum;
  if (name == "seq-mean-token-mean") return AggMode::kSeqMeanTokenMean;
  if (name == "seq-mean-token-sum-norm") return AggMode::kSeqMeanTokenSumNorm;
  fail("unknown loss aggregation mode '{}' (known: token-mean, seq-mean-token-sum, seq-mean-token-mean, "
       "seq-mean-token-sum-norm)",
       name);
}

const char* agg_mode_name(AggMode mode) {
  switch (mode) {
    case AggMode::kTokenMean: return "token-mean";
    case AggMode::kSeqMeanTokenSum: return "seq-mean-token-sum";
    case AggMode::kSeqMeanTokenMean: return "seq-mean-token-mean";
    case AggMode::kSeqMeanTokenSumNorm: return "seq-mean-token-sum-norm";
  }
  return "?";
}

AggCounts count_for_agg(const torch::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2, "count_for_agg: mask must be [N, T], got ", mask.sizes());
  const torch::Tensor m = mask.to(torch::kDouble);
  AggCounts c;
  c.tokens = m.sum().item<double>();
  c.seqs = (m.sum(1) > 0).sum().item<double>();
  return c;
}

torch::Tensor agg_loss(const torch::Tensor& loss_mat, const torch::Tensor& mask, const AggOptions& opts,
                       const AggContext& ctx) {
  TORCH_CHECK(loss_mat.dim() == 2, "agg_loss: loss_mat must be [N, T], got ", loss_mat.sizes());
  TORCH_CHECK(mask.sizes() == loss_mat.sizes(), "agg_loss: mask ", mask.sizes(), " must match loss_mat ",
              loss_mat.sizes());
  const torch::Tensor m = mask.to(loss_mat.scalar_type());
  // where() (not ℓ·m) so that a non-finite value at a masked position cannot leak NaN into the sum.
  const torch::Tensor masked = torch::where(m > 0, loss_mat * m, torch::zeros_like(loss_mat));
  // An empty context with valid tokens here is a forgotten AggContext (a default-constructed one),
  // not an empty mini-batch; checked only in that rare case so the common path does not sync.
  if (ctx.tokens <= 0 || ctx.seqs <= 0)
    TORCH_CHECK(!(m > 0).any().item<bool>(), "agg_loss: the AggContext counts no valid token (tokens ", ctx.tokens,
                ", seqs ", ctx.seqs, ") but this micro-batch has some; build it with AggContext::from_counts or "
                "from_mask over the whole mini-batch");
  // A zero global denominator means nothing is valid anywhere: every numerator is 0 as well, so
  // dividing by 1 instead keeps the result an exact (differentiable) 0.
  auto denom = [](double d) { return d > 0 ? d : 1.0; };
  switch (opts.mode) {
    case AggMode::kTokenMean:
      return masked.sum() / denom(ctx.tokens);
    case AggMode::kSeqMeanTokenSum:
      return masked.sum() / denom(ctx.seqs);
    case AggMode::kSeqMeanTokenMean: {
      // len_n is local on purpose: a row is never split across micro-batches.
      const torch::Tensor len = m.sum(1).clamp_min(1);  // [N]
      return (masked.sum(1) / len).sum() / denom(ctx.seqs);
    }
    case AggMode::kSeqMeanTokenSumNorm:
      // INTERPRETATION: the spec picks TRL's Σ m·ℓ / (N·L_max); N is the global count of non-empty
      // rows (the same N' as the other seq-mean modes; TRL's rows are never empty).
      TORCH_CHECK(opts.norm_len > 0, "agg_loss: norm_len must be > 0, got ", opts.norm_len);
      return masked.sum() / (denom(ctx.seqs) * opts.norm_len);
  }
  TORCH_CHECK(false, "agg_loss: bad mode");
}

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  TORCH_CHECK(mask.sizes() == x.sizes(), "masked_mean: mask ", mask.sizes(), " must match x ", x.sizes());
  const torch::Tensor m = mask.to(x.is_floating_point() ? x.scalar_type() : torch::kDouble);
  const torch::Tensor xv = x.to(m.scalar_type());
  const torch::Tensor masked = torch::where(m > 0, xv * m, torch::zeros_like(xv));
  return masked.sum() / m.sum().clamp_min(1);
}

double masked_mean_value(const torch::Tensor& x, const torch::Tensor& mask) {
  return masked_mean(x.detach(), mask).item<double>();
}

}  // namespace keel::learner
