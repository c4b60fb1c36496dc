// ArenaRL tournament (see arena_rank.h).
#include "trainer/credit/arena_rank.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"

namespace keel::credit {
namespace {

/// Standard bracket order of seeds 1..p (p a power of two): [1, p, …] so that seeds 1 and 2 can
/// only meet in the final; e.g. p = 8 → 1 8 4 5 2 7 3 6.
std::vector<int64_t> bracket_order(int64_t p) {
  std::vector<int64_t> order{1};
  for (int64_t size = 2; size <= p; size *= 2) {
    std::vector<int64_t> next;
    for (int64_t s : order) {
      next.push_back(s);
      next.push_back(size + 1 - s);
    }
    order = std::move(next);
  }
  return order;
}

}  // namespace

ArenaTournament arena_single_elimination(const std::vector<int64_t>& rows, size_t anchor, const PairJudge& judge) {
  const size_t n = rows.size();
  TORCH_CHECK(anchor < n, "arena_single_elimination: anchor position ", anchor, " outside a group of ", n);
  ArenaTournament t;
  t.seed.assign(n, 0);
  t.rank.assign(n, 0);
  t.round_out.assign(n, 0);
  t.avg_score.assign(n, 0.0);
  std::vector<std::vector<double>> received(n);
  std::vector<double> score(n, 0.0);
  // 1. seeding against the anchor
  for (size_t i = 0; i < n; ++i) {
    if (i == anchor) continue;
    const auto [si, sa] = judge(rows[i], rows[anchor]);
    ++t.judge_calls;
    score[i] = si;
    received[i].push_back(si);
    received[anchor].push_back(sa);
  }
  if (n > 1) score[anchor] = std::accumulate(received[anchor].begin(), received[anchor].end(), 0.0) / static_cast<double>(n - 1);
  std::vector<size_t> by_score(n);
  std::iota(by_score.begin(), by_score.end(), size_t{0});
  std::stable_sort(by_score.begin(), by_score.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<int64_t> at_seed(n + 1, -1);  // seed → position
  for (size_t s = 0; s < n; ++s) {
    t.seed[by_score[s]] = static_cast<int64_t>(s + 1);
    at_seed[s + 1] = static_cast<int64_t>(by_score[s]);
  }
  // 2. bracket, padded with byes to a power of two
  int64_t p = 1, rounds = 0;
  while (p < static_cast<int64_t>(n)) {
    p *= 2;
    ++rounds;
  }
  std::vector<int64_t> slots;  // positions, −1 = bye
  for (int64_t s : bracket_order(p)) slots.push_back(s <= static_cast<int64_t>(n) ? at_seed[static_cast<size_t>(s)] : -1);
  for (int64_t round = 1; slots.size() > 1; ++round) {
    std::vector<int64_t> next;
    for (size_t k = 0; k + 1 < slots.size(); k += 2) {
      int64_t a = slots[k], b = slots[k + 1];
      if (a < 0 || b < 0) {  // a bye: the present one advances without a match
        next.push_back(a < 0 ? b : a);
        continue;
      }
      if (t.seed[static_cast<size_t>(b)] < t.seed[static_cast<size_t>(a)]) std::swap(a, b);  // a = better seed
      const auto [sa, sb] = judge(rows[static_cast<size_t>(a)], rows[static_cast<size_t>(b)]);
      ++t.judge_calls;
      received[static_cast<size_t>(a)].push_back(sa);
      received[static_cast<size_t>(b)].push_back(sb);
      const bool a_wins = sa >= sb;  // exact tie → the better seed
      next.push_back(a_wins ? a : b);
      t.round_out[static_cast<size_t>(a_wins ? b : a)] = round;
    }
    slots = std::move(next);
  }
  if (!slots.empty() && slots[0] >= 0) t.round_out[static_cast<size_t>(slots[0])] = rounds + 1;
  // 3. ranking
  for (size_t i = 0; i < n; ++i)
    t.avg_score[i] = received[i].empty() ? 0.0
                                         : std::accumulate(received[i].begin(), received[i].end(), 0.0) /
                                               static_cast<double>(received[i].size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (t.round_out[a] != t.round_out[b]) return t.round_out[a] > t.round_out[b];
    if (t.avg_score[a] != t.avg_score[b]) return t.avg_score[a] > t.avg_score[b];
    return t.seed[a] < t.seed[b];
  });
  for (size_t r = 0; r < n; ++r) t.rank[order[r]] = static_cast<int64_t>(r);
  return t;
}

AdvantageOutput advantage_arena_rank(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "arena_rank");
  reject_kl_rewards(in, "arena_rank");
  TORCH_CHECK(static_cast<bool>(in.pair_judge), "arena_rank needs AdvantageInputs::pair_judge (the pairwise judge)");
  TORCH_CHECK(opts.arena.topology == "single_elimination", "arena_rank: topology '", opts.arena.topology,
              "' is not built (known: single_elimination)");
  const bool unbiased = opts.arena.std != "population";
  const int64_t n = in.group_ids.size(0);
  const at::Tensor gid = in.group_ids.cpu();
  std::vector<bool> is_anchor(static_cast<size_t>(n), false);
  if (in.anchor_mask.defined()) {
    require_field(in.anchor_mask, {n}, "anchor_mask", "arena_rank");
    const at::Tensor am = in.anchor_mask.to(torch::kBool).cpu();
    for (int64_t i = 0; i < n; ++i) is_anchor[static_cast<size_t>(i)] = am[i].item<bool>();
  }
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < n; ++i) groups[gid[i].item<int64_t>()].push_back(i);

  std::vector<double> adv(static_cast<size_t>(n), 0.0);
  int64_t calls = 0;
  for (const auto& [g, rows] : groups) {
    const size_t k = rows.size();
    if (k < 2) {  // advantage.singleton: error throws, zero leaves a = 0, raw has no reward to use
      TORCH_CHECK(opts.singleton == "zero", "arena_rank: group ", g, " has a single trajectory; a tournament needs "
                  ">= 2 (advantage.singleton zero accepts it with a = 0; raw has no tournament reward to use)");
      continue;
    }
    size_t anchor = 0, anchors = 0;
    for (size_t j = 0; j < k; ++j)
      if (is_anchor[static_cast<size_t>(rows[j])]) {
        anchor = j;
        ++anchors;
      }
    TORCH_CHECK(!in.anchor_mask.defined() || anchors == 1, "arena_rank: group ", g, " has ", anchors,
                " anchors in anchor_mask, expected exactly 1");
    const ArenaTournament t = arena_single_elimination(rows, anchor, in.pair_judge);
    calls += t.judge_calls;
    std::vector<double> r(k);
    for (size_t j = 0; j < k; ++j) r[j] = 1.0 - static_cast<double>(t.rank[j]) / static_cast<double>(k - 1);
    const double mu = std::accumulate(r.begin(), r.end(), 0.0) / static_cast<double>(k);
    double ss = 0;
    for (double v : r) ss += (v - mu) * (v - mu);
    const double sd = std::sqrt(ss / static_cast<double>(unbiased ? k - 1 : k));
    for (size_t j = 0; j < k; ++j) adv[static_cast<size_t>(rows[j])] = (r[j] - mu) / (sd + opts.eps);
  }
  const at::Tensor m = float_mask(in);
  const at::Tensor a = torch::tensor(adv, torch::kDouble).to(m.scalar_type()).to(m.device());
  AdvantageOutput out;
  out.advantages = a.unsqueeze(1) * m;
  out.returns = out.advantages;
  out.metrics["arena/judge_calls"] = static_cast<double>(calls);
  add_advantage_metrics(out, m);
  return out;
}

}  // namespace keel::credit
