// SPO win rates (see spo_winrate.h).
#include "trainer/credit/spo_winrate.h"

#include <map>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/group_stats.h"
#include "trainer/credit/grpo.h"
#include "trainer/credit/rloo.h"

namespace keel::credit {

at::Tensor spo_win_rates(const at::Tensor& group_ids, const PreferenceOracle& preference, bool symmetric,
                         int64_t* calls) {
  TORCH_CHECK(static_cast<bool>(preference), "spo_winrate needs AdvantageInputs::preference (the oracle)");
  const at::Tensor gid = group_ids.cpu();
  const int64_t n = gid.size(0);
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < n; ++i) groups[gid[i].item<int64_t>()].push_back(i);
  std::vector<double> win(static_cast<size_t>(n), 0.0);
  int64_t used = 0;
  for (const auto& [g, rows] : groups) {
    if (rows.size() < 2) continue;  // nothing to compare with: 0, no oracle call (advantage.singleton decides)
    for (size_t a = 0; a < rows.size(); ++a)
      for (size_t b = a + 1; b < rows.size(); ++b) {
        double p = preference(rows[a], rows[b]);
        ++used;
        if (!symmetric) {
          p = 0.5 * (p + 1.0 - preference(rows[b], rows[a]));
          ++used;
        }
        TORCH_CHECK(p >= 0 && p <= 1, "spo_winrate: preference(", rows[a], ", ", rows[b], ") = ", p,
                    " is not a probability in [0, 1]");
        win[static_cast<size_t>(rows[a])] += p;
        win[static_cast<size_t>(rows[b])] += 1.0 - p;
      }
    for (int64_t i : rows) win[static_cast<size_t>(i)] /= static_cast<double>(rows.size() - 1);
  }
  if (calls) *calls = used;
  return torch::tensor(win, torch::kDouble).to(group_ids.device());
}

PreferenceOracle spo_reward_order_preference(const at::Tensor& rewards) {
  TORCH_CHECK(rewards.dim() == 1, "spo_reward_order_preference: rewards must be [N], got ", rewards.sizes());
  const at::Tensor r = rewards.to(torch::kDouble).cpu().contiguous();
  auto v = std::make_shared<const std::vector<double>>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
  return [v](int64_t a, int64_t b) {
    const double ra = v->at(static_cast<size_t>(a)), rb = v->at(static_cast<size_t>(b));
    return ra > rb ? 1.0 : ra < rb ? 0.0 : 0.5;
  };
}

AdvantageOutput advantage_spo_winrate(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "spo_winrate");
  reject_kl_rewards(in, "spo_winrate");
  TORCH_CHECK(opts.spo.base == "grpo" || opts.spo.base == "rloo", "spo_winrate: unknown base '", opts.spo.base,
              "' (known: grpo, rloo)");
  TORCH_CHECK(opts.spo.judge == "none" || opts.spo.judge == "reward_order", "spo_winrate: unknown judge '",
              opts.spo.judge, "' (known: none, reward_order)");
  // reward_order only when named; none takes the judge model's oracle.
  const bool by_reward = opts.spo.judge == "reward_order";
  TORCH_CHECK(by_reward || static_cast<bool>(in.preference),
              "spo_winrate: spo.judge none needs AdvantageInputs::preference from a pairwise judge model "
              "(set advantage.spo.judge: reward_order to use the sequence rewards' order)");
  // A lone sample has no win rate: singleton error throws, zero scores it 0, raw is refused.
  const GroupIndex idx = group_index(in.group_ids);
  const at::Tensor single = lone_rows(idx);
  check_singletons(single, opts, "spo_winrate");
  TORCH_CHECK(opts.singleton != "raw" || !single.any().item<bool>(),
              "spo_winrate: a group has a single sample, which has no win rate to use raw; "
              "set advantage.singleton to zero or error");
  AdvantageOptions base = opts;
  base.singleton = "zero";  // only reached with no lone rows, or with singleton zero
  int64_t calls = 0;
  const at::Tensor m = float_mask(in);
  const PreferenceOracle oracle = by_reward ? spo_reward_order_preference(sequence_rewards(in.token_rewards))
                                            : in.preference;
  const at::Tensor r = spo_win_rates(in.group_ids, oracle, opts.spo.symmetric, &calls).to(m.scalar_type());
  const at::Tensor a = opts.spo.base == "rloo" ? rloo_scores(r, in.group_ids, base, "spo_winrate")
                                               : grpo_scores(r, in.group_ids, base, opts.norm_by_std, "spo_winrate");
  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  out.metrics["spo/oracle_calls"] = static_cast<double>(calls);
  out.metrics["spo/win_rate_mean"] = r.numel() ? r.mean().item<double>() : 0.0;
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
