// ArenaRL tournament advantages (spec §9; Zhang et al., arXiv 2601.06487v2 §3.3, §4): per group one
// greedy anchor + sampled trajectories, a seeding round against the anchor, a seeded
// single-elimination bracket, ranks by depth reached, r = 1 − rank/(N−1), then group-normalised.
// The judge is arena.judge: a pairwise judge model (PairJudge, the rewards side plugs an LLM judge
// in), or the sequence rewards' order when the config names reward_order. Rows the match results
// cannot separate (a tied match, or the same elimination round and mean score) share one rank.
// Deliberately not here: round-robin / Swiss / double-elimination topologies (not built), a judge model.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Outcome of one group's tournament, indexed like the `rows` passed in.
struct ArenaTournament {
  std::vector<int64_t> seed;       ///< 1 = best seed (bracket placement only)
  /// 0 = champion … N−1; rows the results do not separate share the mean of the places they
  /// cover (fractional ranking: reward_order on [1, 1, 0, 0] → 0.5, 0.5, 2.5, 2.5), so the ranks
  /// always sum to N(N−1)/2.
  std::vector<double> rank;
  std::vector<int64_t> round_out;  ///< round of elimination (1-based); champion = rounds + 1
  /// 1 + rounds passed by a bye or a decisive win: round_out when no match was tied.
  std::vector<int64_t> depth;
  /// Mean of the scores received in decisive matches (seeding + bracket); all scores received
  /// when every match of the row was tied.
  std::vector<double> avg_score;
  int64_t judge_calls = 0;
};

/// Seeded single elimination over batch rows `rows` with rows[anchor] the greedy anchor:
/// 1. seeding: judge(rows[i], rows[anchor]) for every i ≠ anchor → s_i; the anchor's score is the
///    mean of its N−1 scores; seeds by score descending (INTERPRETATION: ties → earlier position);
/// 2. standard bracket 1 vs N, 2 vs N−1, … padded to the next power of two; INTERPRETATION (spec):
///    the missing slots are byes for the top seeds; a match is judge(better seed, worse seed),
///    higher score wins, an exact tie s_a == s_b sends the better seed on (the bracket needs one);
/// 3. ranks by depth reached (later = better), then by the mean score received (INTERPRETATION of
///    "accumulated average"; the anchor counts each seeding score).
///    INTERPRETATION (issue: ties as ties, where the spec let the seed, i.e. the row position,
///    decide an exact tie): a tied match separates nobody. It adds no depth to the row the bracket
///    sends on and no score to either mean; rows linked by tied matches (seeding or bracket) form
///    a tie class, unless the link would join two rows that a chain of decisive wins separates
///    (x beat … beat y: a judge that is not transitive cannot undo its results); every row
///    of a class takes the best (depth, mean) in it; equal standings share one fractional rank.
///    Without ties this is the spec's ranking. A group the judge cannot separate at all gets N
///    equal ranks (a = 0); under reward_order, groups of 2^k rows with two reward levels rank
///    equal rewards equally for any row order and anchor. Rows that never meet can still differ
///    by the draw (three or more reward levels, or byes when N is not a power of two).
ArenaTournament arena_single_elimination(const std::vector<int64_t>& rows, size_t anchor, const PairJudge& judge);

/// The judge of arena.judge "reward_order": (s_a, s_b) = (2P, 2(1 − P)) with P = 1 / 0.5 / 0 as
/// R_a > / = / < R_b — one point per direction of the bidirectional match to the higher reward,
/// half each on a tie. rewards [N] (copied; the judge owns them).
PairJudge arena_reward_order_judge(const at::Tensor& rewards);

/// Estimator "arena_rank": arena.judge "none" needs pair_judge (a judge model; token_rewards are
/// then not read); "reward_order" builds arena_reward_order_judge from R = Σ_t token_rewards and
/// ignores pair_judge. anchor_mask [N] optional (one anchor per group, else INTERPRETATION: the
/// group's first row); arena.std "unbiased" (default) or "population"; eps. Tied ranks can make a
/// group's rank rewards all equal: then a = 0 exactly (e.g. identical rewards under reward_order).
/// A group of one follows advantage.singleton: error throws, zero gives a = 0 without a judge call,
/// raw is refused (a lone trajectory has no rank reward, r = 1 − rank/(N−1) needs N ≥ 2).
AdvantageOutput advantage_arena_rank(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
