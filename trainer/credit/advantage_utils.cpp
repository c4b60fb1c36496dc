// Shared estimator helpers (see advantage_utils.h).
#include "trainer/credit/advantage_utils.h"

#include <torch/torch.h>

namespace keel::credit {

void check_core_inputs(const AdvantageInputs& in, const char* who) {
  TORCH_CHECK(in.token_rewards.defined() && in.token_rewards.dim() == 2, who,
              ": token_rewards must be [N, T], got ", in.token_rewards.defined() ? in.token_rewards.sizes() : at::IntArrayRef{});
  TORCH_CHECK(in.token_rewards.is_floating_point(), who, ": token_rewards must be floating point, got ",
              in.token_rewards.scalar_type());
  TORCH_CHECK(in.response_mask.defined() && in.response_mask.sizes() == in.token_rewards.sizes(), who,
              ": response_mask must be [N, T] = ", in.token_rewards.sizes(), ", got ",
              in.response_mask.defined() ? in.response_mask.sizes() : at::IntArrayRef{});
  TORCH_CHECK(in.group_ids.defined() && in.group_ids.dim() == 1 && in.group_ids.size(0) == in.token_rewards.size(0),
              who, ": group_ids must be [N] with N = ", in.token_rewards.size(0), ", got ",
              in.group_ids.defined() ? in.group_ids.sizes() : at::IntArrayRef{});
  TORCH_CHECK(in.group_ids.scalar_type() == torch::kLong, who, ": group_ids must be int64, got ",
              in.group_ids.scalar_type());
}

void require_field(const at::Tensor& t, at::IntArrayRef sizes, const char* field, const char* who) {
  TORCH_CHECK(t.defined(), who, " needs AdvantageInputs::", field, " ", sizes, ", which is missing");
  TORCH_CHECK(t.sizes() == sizes, who, ": ", field, " must be ", sizes, ", got ", t.sizes());
}

void reject_kl_rewards(const AdvantageInputs& in, const char* who) {
  TORCH_CHECK(!in.kl_rewards.defined(), who,
              " uses the sequence outcome only; KL-in-reward (kl_rewards) would be summed away — use kl.in_loss");
}

void check_singletons(const at::Tensor& single, const AdvantageOptions& opts, const char* who) {
  TORCH_CHECK(opts.singleton == "error" || opts.singleton == "zero" || opts.singleton == "raw", who,
              ": unknown advantage.singleton '", opts.singleton, "' (known: error, zero, raw)");
  if (opts.singleton != "error") return;
  TORCH_CHECK(!single.any().item<bool>(), who,
              ": a group has a single sample; group-relative advantages need >= 2 samples per prompt "
              "(set advantage.singleton to zero or raw to accept it)");
}

at::Tensor normalise_within_groups(const at::Tensor& x, const GroupIndex& idx, const at::Tensor& ok,
                                   const at::Tensor& lone, const AdvantageOptions& opts) {
  const at::Tensor xd = x.to(torch::kDouble);
  const at::Tensor zero = torch::zeros({}, xd.options());
  const GroupStats st = group_stats(xd, idx, ok);
  at::Tensor a = xd - st.mean.index_select(0, idx.inverse);
  if (opts.norm_by_std) a = a / (st.std.index_select(0, idx.inverse) + opts.eps);
  const at::Tensor lone_value = opts.singleton != "raw" ? zero : opts.norm_by_std ? xd / (1 + opts.eps) : xd;
  return torch::where(ok, torch::where(lone, lone_value, a), zero);
}

at::Tensor float_mask(const AdvantageInputs& in) {
  return (in.response_mask != 0).to(in.token_rewards.scalar_type());
}

at::Tensor sequence_rewards(const at::Tensor& token_rewards) { return token_rewards.sum(-1); }

at::Tensor last_valid_index(const at::Tensor& mask) {
  const int64_t t = mask.size(1);
  const at::Tensor pos = torch::arange(t, mask.options().dtype(torch::kLong)).unsqueeze(0);
  return torch::where(mask != 0, pos, torch::full({}, -1, pos.options())).amax(-1);
}

at::Tensor place_at_last_valid(const at::Tensor& x, const at::Tensor& mask) {
  const at::Tensor last = last_valid_index(mask);
  const at::Tensor pos = torch::arange(mask.size(1), last.options()).unsqueeze(0);
  const at::Tensor hit = (pos == last.unsqueeze(1)).to(x.scalar_type());  // no hit for empty rows
  return hit * x.unsqueeze(1);
}

at::Tensor masked_whiten(const at::Tensor& x, const at::Tensor& mask, bool unbiased, bool scale) {
  const at::Tensor m = (mask != 0).to(x.scalar_type());
  const double n = m.sum().item<double>();
  if (n == 0) return x;
  const at::Tensor mu = (x * m).sum() / n;
  const at::Tensor centred = x - mu;
  if (!scale) return centred;
  const at::Tensor ss = (centred * centred * m).sum();
  if (unbiased) {
    TORCH_CHECK(n >= 2, "masked_whiten: the unbiased variance needs >= 2 valid tokens, got ", n);
    return centred * torch::rsqrt(ss / (n - 1) + 1e-8);
  }
  return centred * torch::rsqrt((ss / n).clamp_min(1e-8));
}

at::Tensor discounted_returns(const at::Tensor& rewards, const at::Tensor& mask, double gamma, bool reset_on_holes) {
  const at::Tensor m = (mask != 0).to(rewards.scalar_type());
  const int64_t t_len = rewards.size(1);
  at::Tensor out = torch::zeros_like(rewards);
  at::Tensor run = torch::zeros({rewards.size(0)}, rewards.options());
  for (int64_t t = t_len - 1; t >= 0; --t) {
    const at::Tensor r = rewards.select(1, t);
    const at::Tensor mt = m.select(1, t);
    if (reset_on_holes) {
      run = r + gamma * run;  // verl: every position, then reset after a masked one
      out.select(1, t).copy_(run);
      run = run * mt;
    } else {
      run = mt * (r + gamma * run) + (1 - mt) * run;  // skip masked positions
      out.select(1, t).copy_(run);
    }
  }
  return out;
}

void add_advantage_metrics(AdvantageOutput& out, const at::Tensor& mask) {
  const at::Tensor valid = mask != 0;
  const int64_t n = valid.sum().item<int64_t>();
  if (n == 0) {
    out.metrics["adv/mean"] = out.metrics["adv/max"] = out.metrics["adv/min"] = out.metrics["returns/mean"] = 0.0;
    return;
  }
  const at::Tensor a = out.advantages.masked_select(valid);
  out.metrics["adv/mean"] = a.mean().item<double>();
  out.metrics["adv/max"] = a.max().item<double>();
  out.metrics["adv/min"] = a.min().item<double>();
  out.metrics["returns/mean"] = out.returns.masked_select(valid).mean().item<double>();
}

}  // namespace keel::credit
