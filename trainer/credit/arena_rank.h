// ArenaRL tournament advantages (spec §9; Zhang et al., arXiv 2601.06487v2 §3.3, §4): per group one
// greedy anchor + sampled trajectories, a seeding round against the anchor, a seeded
// single-elimination bracket, ranks by depth reached, r = 1 − rank/(N−1), then group-normalised.
// The judge is an interface (PairJudge): the rewards side plugs a real LLM judge in.
// Deliberately not here: round-robin / Swiss / double-elimination topologies (not built), the judge.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/credit/advantage.h"

namespace keel::credit {

/// Outcome of one group's tournament, indexed like the `rows` passed in.
struct ArenaTournament {
  std::vector<int64_t> seed;       ///< 1 = best seed
  std::vector<int64_t> rank;       ///< 0 = champion … N−1
  std::vector<int64_t> round_out;  ///< round of elimination (1-based); champion = rounds + 1
  std::vector<double> avg_score;   ///< mean of every score received (seeding + bracket)
  int64_t judge_calls = 0;
};

/// Seeded single elimination over batch rows `rows` with rows[anchor] the greedy anchor:
/// 1. seeding: judge(rows[i], rows[anchor]) for every i ≠ anchor → s_i; the anchor's score is the
///    mean of its N−1 scores; seeds by score descending (INTERPRETATION: ties → earlier position);
/// 2. standard bracket 1 vs N, 2 vs N−1, … padded to the next power of two; INTERPRETATION (spec):
///    the missing slots are byes for the top seeds; a match is judge(better seed, worse seed),
///    higher score wins, exact ties go to the better seed;
/// 3. ranks by elimination round (later = better), ties by the mean of all scores the trajectory
///    received (INTERPRETATION of "accumulated average"; the anchor counts each seeding score),
///    then by seed.
ArenaTournament arena_single_elimination(const std::vector<int64_t>& rows, size_t anchor, const PairJudge& judge);

/// Estimator "arena_rank": needs pair_judge; anchor_mask [N] optional (one anchor per group, else
/// INTERPRETATION: the group's first row); arena.std "unbiased" (default) or "population"; eps. A group of
/// one follows advantage.singleton: error throws, zero gives a = 0 without a judge call, raw is refused
/// (a lone trajectory has no rank reward, r = 1 − rank/(N−1) needs N ≥ 2). token_rewards are not read.
AdvantageOutput advantage_arena_rank(const AdvantageInputs& in, const AdvantageOptions& opts);

}  // namespace keel::credit
