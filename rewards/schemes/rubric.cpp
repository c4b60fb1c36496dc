// Rubric explicit aggregation and POW3R (see rubric.h).
#include "rewards/schemes/rubric.h"

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

double rubric_category_weight(const std::string& category, const RubricOptions& o) {
  auto it = o.category_weights.find(category);
  if (it != o.category_weights.end()) return it->second;
  std::string known;
  for (const auto& [k, v] : o.category_weights) known += (known.empty() ? "" : ", ") + k;
  fail("unknown rubric category '{}' (known: {})", category, known);
}

namespace {

struct Prepared {
  at::Tensor c, w, m;  // [N, K] each, m as the verdict dtype
};

Prepared prepare(const at::Tensor& verdicts, const at::Tensor& weights, const at::Tensor& mask) {
  TORCH_CHECK(verdicts.dim() == 2, "rubric: verdicts must be [N, K], got ", verdicts.sizes());
  const auto dtype = verdicts.is_floating_point() ? verdicts.scalar_type() : torch::kFloat64;
  Prepared p;
  p.c = verdicts.to(dtype);
  TORCH_CHECK(weights.dim() == 1 ? weights.size(0) == verdicts.size(1) : weights.sizes() == verdicts.sizes(),
              "rubric: weights must be [K] or [N, K] matching verdicts ", verdicts.sizes(), ", got ", weights.sizes());
  p.w = weights.to(dtype).expand_as(p.c);
  if (mask.defined()) {
    TORCH_CHECK(mask.sizes() == verdicts.sizes(), "rubric: mask ", mask.sizes(), " != verdicts ", verdicts.sizes());
    p.m = mask.to(dtype);
  } else {
    p.m = torch::ones_like(p.c);
  }
  return p;
}

// Σ w c / Σ w over the mask; `fallback` [N] where Σ w = 0.
at::Tensor weighted_mean(const at::Tensor& c, const at::Tensor& w, const at::Tensor& m, const at::Tensor& fallback) {
  const at::Tensor den = (w * m).sum(1);
  const at::Tensor num = (w * m * c).sum(1);
  return torch::where(den > 0, num / torch::where(den > 0, den, torch::ones_like(den)), fallback);
}

}  // namespace

at::Tensor rubric_explicit_reward(const at::Tensor& verdicts, const at::Tensor& weights, const at::Tensor& mask) {
  const Prepared p = prepare(verdicts, weights, mask);
  return weighted_mean(p.c, p.w, p.m, torch::zeros({p.c.size(0)}, p.c.options()));
}

at::Tensor pow3r_alpha(const at::Tensor& verdicts, const at::Tensor& mask, const at::Tensor& group_ids) {
  TORCH_CHECK(group_ids.dim() == 1 && group_ids.size(0) == verdicts.size(0), "pow3r: group_ids must be [N], got ",
              group_ids.sizes());
  const Prepared p = prepare(verdicts, torch::ones({verdicts.size(1)}, torch::kFloat64), mask);
  const GroupIndex g = make_group_index(group_ids);
  const at::Tensor passes = group_sum(p.c * p.m, g);  // [G, K]
  const at::Tensor counts = group_sum(p.m, g);        // [G, K]
  const at::Tensor rate = passes / counts.clamp_min(1.0);
  const at::Tensor alpha = (rate * (1.0 - rate)).clamp_min(0.0).sqrt() / 0.5;
  return group_gather(alpha, g);
}

at::Tensor pow3r_reward(const at::Tensor& verdicts, const at::Tensor& weights, const at::Tensor& mask,
                        const at::Tensor& group_ids, const at::Tensor& categories, const Pow3rOptions& o) {
  const Prepared p = prepare(verdicts, weights, mask);
  const at::Tensor alpha = pow3r_alpha(verdicts, mask, group_ids).to(p.c.scalar_type());
  const at::Tensor w_tilde = p.w * alpha.clamp_min(o.eps);
  const at::Tensor zero = torch::zeros({p.c.size(0)}, p.c.options());
  if (!o.category_balance || !categories.defined()) {
    const at::Tensor static_r = weighted_mean(p.c, p.w, p.m, zero);
    return weighted_mean(p.c, w_tilde, p.m, static_r);
  }
  TORCH_CHECK(categories.sizes() == verdicts.sizes(), "pow3r: categories ", categories.sizes(), " != verdicts ",
              verdicts.sizes());
  // Per category: adapted mean (static fallback), combined with the category's original total weight.
  const at::Tensor cats = std::get<0>(at::_unique(categories.masked_select(p.m > 0), /*sorted=*/true));
  at::Tensor num = torch::zeros_like(zero), den = torch::zeros_like(zero);
  for (int64_t i = 0; i < cats.numel(); ++i) {
    const at::Tensor in_cat = p.m * (categories == cats[i]).to(p.m.scalar_type());
    const at::Tensor total = (p.w * in_cat).sum(1);  // original weight of the category per row
    const at::Tensor r_cat = weighted_mean(p.c, w_tilde, in_cat, weighted_mean(p.c, p.w, in_cat, zero));
    num = num + total * r_cat;
    den = den + total;
  }
  return torch::where(den > 0, num / torch::where(den > 0, den, torch::ones_like(den)), zero);
}

void read_rubric_options(config::Reader& r, RubricOptions& o) {
  r.section("category_weights", "weight of each rubric category", [&](config::Reader& s) {
    for (auto& [name, w] : o.category_weights) s.field(name, w, "weight of " + name + " criteria").ge(0);
  });
}

void read_pow3r_options(config::Reader& r, Pow3rOptions& o) {
  r.field("eps", o.eps, "floor on the contrast alpha (0 = pure POW3R)").ge(0).le(1);
  r.field("category_balance", o.category_balance, "normalise inside categories, combine by original totals");
}

}  // namespace keel::rewards
