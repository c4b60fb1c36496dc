// DCPO selection (see dcpo.h).
#include "trainer/credit/dcpo.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <vector>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

int64_t dcpo_keep_per_side(int64_t k_keep, int64_t group_size) {
  TORCH_CHECK(k_keep == 0 || k_keep >= 2, "dcpo: k_keep must be 0 (half the group) or >= 2, got ", k_keep);
  // 0: the paper's K/2 kept, K/4 per side (INTERPRETATION: floor, at least one pair).
  if (k_keep == 0) return group_size < 2 ? 0 : std::max<int64_t>(1, group_size / 4);
  return std::min<int64_t>(k_keep, group_size) / 2;
}

at::Tensor dcpo_select(const at::Tensor& rewards, const at::Tensor& lengths, const at::Tensor& group_ids, int64_t k_keep) {
  TORCH_CHECK(rewards.dim() == 1 && rewards.sizes() == group_ids.sizes() && lengths.sizes() == group_ids.sizes(),
              "dcpo_select: rewards, lengths and group_ids must all be [N], got ", rewards.sizes(), ", ",
              lengths.sizes(), ", ", group_ids.sizes());
  const at::Tensor r = rewards.to(torch::kDouble).cpu(), len = lengths.to(torch::kDouble).cpu(), gid = group_ids.cpu();
  const int64_t n = r.size(0);
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < n; ++i) groups[gid[i].item<int64_t>()].push_back(i);
  std::vector<uint8_t> keep(static_cast<size_t>(n), 0);
  auto R = [&](int64_t i) { return r[i].item<double>(); };
  auto L = [&](int64_t i) { return len[i].item<double>(); };
  for (auto& [g, rows] : groups) {
    const int64_t h = dcpo_keep_per_side(k_keep, static_cast<int64_t>(rows.size()));
    const bool flat = std::all_of(rows.begin(), rows.end(), [&](int64_t i) { return R(i) == R(rows[0]) && L(i) == L(rows[0]); });
    if (h == 0 || flat) continue;
    std::vector<int64_t> order = rows;  // rows are ascending already
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return R(a) != R(b) ? R(a) > R(b) : L(a) < L(b);
    });
    std::vector<int64_t> rest(order.begin() + h, order.end());
    for (int64_t j = 0; j < h; ++j) keep[static_cast<size_t>(order[static_cast<size_t>(j)])] = 1;
    std::sort(rest.begin(), rest.end());
    std::stable_sort(rest.begin(), rest.end(), [&](int64_t a, int64_t b) {
      return R(a) != R(b) ? R(a) < R(b) : L(a) > L(b);
    });
    for (int64_t j = 0; j < h && j < static_cast<int64_t>(rest.size()); ++j) keep[static_cast<size_t>(rest[static_cast<size_t>(j)])] = 1;
  }
  return torch::tensor(std::vector<int64_t>(keep.begin(), keep.end()), torch::kLong).to(torch::kBool).to(group_ids.device());
}

AdvantageOutput advantage_dcpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "dcpo");
  reject_kl_rewards(in, "dcpo");
  const at::Tensor m = float_mask(in);
  const at::Tensor r = sequence_rewards(in.token_rewards);
  at::Tensor len = m.sum(1);
  if (in.reasoning_lengths.defined()) {
    require_field(in.reasoning_lengths, {r.size(0)}, "reasoning_lengths", "dcpo");
    len = in.reasoning_lengths;
  }
  // A group of one has nothing to contrast: singleton error throws, zero leaves it unselected
  // (a = 0, out of the loss), raw keeps it with GRPO's raw score R/(1+eps).
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor single = lone_rows(idx);
  check_singletons(single, opts, "dcpo");
  at::Tensor kept = dcpo_select(r, len, in.group_ids, opts.dcpo.k_keep);
  if (opts.singleton == "raw") kept = kept | single;
  AdvantageOptions g = opts;
  // Apart from lone rows kept by raw, the kept subset of a group is empty or has >= 2 rows.
  if (g.singleton == "error") g.singleton = "zero";
  const at::Tensor a = grpo_scores(r, in.group_ids, g, opts.norm_by_std, "dcpo", kept);
  AdvantageOutput out;
  out.loss_mask = m * kept.to(m.scalar_type()).unsqueeze(1);
  out.advantages = a.unsqueeze(1) * out.loss_mask;
  out.returns = out.advantages;
  out.metrics["dcpo/kept_frac"] = r.numel() ? kept.to(torch::kDouble).mean().item<double>() : 0.0;
  add_advantage_metrics(out, out.loss_mask);
  return out;
}

}  // namespace keel::credit
