// ArenaRL tournament (see arena_rank.h).
#include "trainer/credit/arena_rank.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/spo_winrate.h"

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

/// Tie classes of a group of n rows: rows linked by tied matches (`ties`, in match order) are
/// joined, unless the join would put in one class two rows that a chain of decisive results
/// separates (beat[x][y]: x beat y; x beat … beat y) — a judge that is not transitive cannot undo
/// a result it gave. → class id per row.
std::vector<size_t> tie_classes(size_t n, const std::vector<std::pair<size_t, size_t>>& ties,
                                std::vector<std::vector<bool>> beat) {
  for (size_t k = 0; k < n; ++k)  // transitive closure: beat[x][y] = a chain of decisive wins x … y
    for (size_t x = 0; x < n; ++x)
      if (beat[x][k])
        for (size_t y = 0; y < n; ++y)
          if (beat[k][y]) beat[x][y] = true;
  std::vector<size_t> cls(n);
  std::iota(cls.begin(), cls.end(), size_t{0});
  for (const auto& [x, y] : ties) {
    const size_t cx = cls[x], cy = cls[y];
    if (cx == cy) continue;
    bool separated = false;
    for (size_t u = 0; u < n && !separated; ++u)
      for (size_t v = 0; v < n && !separated; ++v)
        separated = cls[u] == cx && cls[v] == cy && (beat[u][v] || beat[v][u]);
    if (separated) continue;
    for (size_t& c : cls)
      if (c == cy) c = cx;
  }
  return cls;
}

}  // namespace

ArenaTournament arena_single_elimination(const std::vector<int64_t>& rows, size_t anchor, const PairJudge& judge) {
  const size_t n = rows.size();
  TORCH_CHECK(anchor < n, "arena_single_elimination: anchor position ", anchor, " outside a group of ", n);
  ArenaTournament t;
  t.seed.assign(n, 0);
  t.rank.assign(n, 0.0);
  t.round_out.assign(n, 0);
  t.avg_score.assign(n, 0.0);
  std::vector<std::vector<double>> received(n), decided(n);  // every score; scores of decisive matches
  std::vector<double> score(n, 0.0);
  std::vector<int64_t> depth(n, 1);  // 1 + rounds passed by a bye or a decisive win
  // Every match, for the tie classes of step 3: tied pairs in match order, decisive wins.
  std::vector<std::pair<size_t, size_t>> ties;
  std::vector<std::vector<bool>> beat(n, std::vector<bool>(n, false));  // beat[x][y]: x beat y
  auto play = [&](size_t x, size_t y) {
    const auto [sx, sy] = judge(rows[x], rows[y]);
    ++t.judge_calls;
    received[x].push_back(sx);
    received[y].push_back(sy);
    if (sx == sy) {
      ties.emplace_back(x, y);
    } else {
      (sx > sy ? beat[x][y] : beat[y][x]) = true;
      decided[x].push_back(sx);
      decided[y].push_back(sy);
    }
    return std::make_pair(sx, sy);
  };
  // 1. seeding against the anchor
  for (size_t i = 0; i < n; ++i)
    if (i != anchor) score[i] = play(i, anchor).first;
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
        ++depth[static_cast<size_t>(a < 0 ? b : a)];
        continue;
      }
      if (t.seed[static_cast<size_t>(b)] < t.seed[static_cast<size_t>(a)]) std::swap(a, b);  // a = better seed
      const auto [sa, sb] = play(static_cast<size_t>(a), static_cast<size_t>(b));
      const bool a_wins = sa >= sb;  // exact tie: the better seed goes on (the bracket needs one), see step 3
      next.push_back(a_wins ? a : b);
      t.round_out[static_cast<size_t>(a_wins ? b : a)] = round;
      if (sa != sb) ++depth[static_cast<size_t>(a_wins ? a : b)];  // a tie advances without credit
    }
    slots = std::move(next);
  }
  if (!slots.empty() && slots[0] >= 0) t.round_out[static_cast<size_t>(slots[0])] = rounds + 1;
  // 3. ranking. A tied match separates nobody, so it counts neither for the depth nor for the mean
  // (a row with no decisive match falls back to the mean of its tied scores). Sorted sums: rows
  // that received the same scores in any order get bit-identical means.
  auto mean_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  for (size_t i = 0; i < n; ++i) t.avg_score[i] = mean_of(decided[i].empty() ? received[i] : decided[i]);
  t.depth = depth;
  // Standing (depth, mean score), larger = better; every row of a tie class takes the best
  // standing in it (a tied loser could as well have gone on: only its seed, i.e. its row
  // position, sent the other one).
  using Standing = std::pair<int64_t, double>;
  const std::vector<size_t> cls = tie_classes(n, ties, beat);
  std::vector<Standing> st(n);
  for (size_t i = 0; i < n; ++i) st[i] = {depth[i], t.avg_score[i]};
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (cls[j] == cls[i]) st[i] = std::max(st[i], Standing{depth[j], t.avg_score[j]});
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return st[a] > st[b]; });
  // Equal standings share the mean of the places they cover: places lo .. hi−1 → (lo + hi − 1)/2.
  for (size_t lo = 0; lo < n;) {
    size_t hi = lo + 1;
    while (hi < n && st[order[hi]] == st[order[lo]]) ++hi;
    for (size_t j = lo; j < hi; ++j) t.rank[order[j]] = static_cast<double>(lo + hi - 1) / 2.0;
    lo = hi;
  }
  return t;
}

PairJudge arena_reward_order_judge(const at::Tensor& rewards) {
  TORCH_CHECK(rewards.dim() == 1, "arena_reward_order_judge: rewards must be [N], got ", rewards.sizes());
  const PreferenceOracle pref = spo_reward_order_preference(rewards);  // P(a ≻ b), one judge direction
  return [pref](int64_t a, int64_t b) {
    const double p = pref(a, b);
    return std::pair<double, double>{2 * p, 2 * (1 - p)};  // both directions summed
  };
}

AdvantageOutput advantage_arena_rank(const AdvantageInputs& in, const AdvantageOptions& opts) {
  check_core_inputs(in, "arena_rank");
  reject_kl_rewards(in, "arena_rank");
  TORCH_CHECK(opts.arena.topology == "single_elimination", "arena_rank: topology '", opts.arena.topology,
              "' is not built (known: single_elimination)");
  TORCH_CHECK(opts.arena.judge == "none" || opts.arena.judge == "reward_order", "arena_rank: unknown judge '",
              opts.arena.judge, "' (known: none, reward_order)");
  // reward_order only when named; none takes the judge model's pair_judge.
  const bool by_reward = opts.arena.judge == "reward_order";
  TORCH_CHECK(by_reward || static_cast<bool>(in.pair_judge),
              "arena_rank: arena.judge none needs AdvantageInputs::pair_judge from a pairwise judge model "
              "(set advantage.arena.judge: reward_order to use the sequence rewards' order)");
  const PairJudge judge = by_reward ? arena_reward_order_judge(sequence_rewards(in.token_rewards)) : in.pair_judge;
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
    const ArenaTournament t = arena_single_elimination(rows, anchor, judge);
    calls += t.judge_calls;
    std::vector<double> r(k);
    for (size_t j = 0; j < k; ++j) r[j] = 1.0 - t.rank[j] / static_cast<double>(k - 1);
    const double mu = std::accumulate(r.begin(), r.end(), 0.0) / static_cast<double>(k);
    double ss = 0;
    for (double v : r) ss += (v - mu) * (v - mu);
    const double sd = std::sqrt(ss / static_cast<double>(unbiased ? k - 1 : k));
    // All ranks tied → r all equal: r − μ may be ±1 ulp, so exactly 0 (σ_r = 0, no signal).
    const bool flat = std::all_of(r.begin(), r.end(), [&](double v) { return v == r[0]; });
    for (size_t j = 0; j < k; ++j) adv[static_cast<size_t>(rows[j])] = flat ? 0.0 : (r[j] - mu) / (sd + opts.eps);
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
