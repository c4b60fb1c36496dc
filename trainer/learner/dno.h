// Pure pieces of DNO-Prct, Direct Nash Optimization batched on-policy (spec §8.3; Rosset et al.
// arXiv 2404.03715, Algorithm 2 and §5.1): which iterate is the DPO reference, the large-margin
// pair filter, and the exponentially decaying replay quota. The loss itself is the DPO sigmoid loss
// (dpo_loss.h) with the previous iterate as reference.
//
// Deliberately not here: sampling, the judge (LLM preference oracle), the gold/teacher outputs, the
// n-gram repetition detector, the outer iteration loop and checkpoint bookkeeping.
#pragma once

#include <cstdint>
#include <vector>

namespace keel::learner {

/// Iterations are 1-based: iteration t trains π_{t+1} starting from π_t; π_1 is the SFT model.
/// The reference of iteration t is π_t when dpo.ref_refresh_every_iter (DNO), else π_1 (plain DPO).
int dno_reference_iterate(int iteration, bool refresh_every_iter);

/// Whether, at the start of iteration t, the reference must be replaced by the current policy
/// (true for t >= 2 when refresh_every_iter).
bool dno_refresh_reference(int iteration, bool refresh_every_iter);

/// One output for a prompt: judge score (paper: 6-point additive rubric, 1..6), whether it was
/// sampled from the student (the policy) or is the teacher's gold output, and whether an automatic
/// check (many repeated n-grams) marked it as a negative.
struct DnoCandidate {
  double score = 0;
  bool is_student = true;
  bool auto_negative = false;
};

struct DnoPairRules {
  double min_positive_score = 5;  ///< positives must score >= 5 (i.e. 5 or 6)
  double margin_gold = 2;         ///< negative at least this much lower when the positive is the teacher's
  double margin_student = 1;      ///< ... and this much when the positive is a student sample
};

/// (chosen, rejected) indices into the candidate list.
struct PreferencePair {
  int64_t chosen = 0;
  int64_t rejected = 0;
  bool operator==(const PreferencePair& o) const { return chosen == o.chosen && rejected == o.rejected; }
};

/// Every qualifying pair (student≻teacher, teacher≻student, student≻student), ordered by chosen
/// then rejected index. INTERPRETATION: an auto_negative output is never a positive and qualifies as
/// a negative against any positive regardless of the margin.
std::vector<PreferencePair> dno_select_pairs(const std::vector<DnoCandidate>& candidates, const DnoPairRules& rules = {});

/// Replay quota of iteration t: element k−1 is the most pairs to mix in from iteration t−k,
/// floor(n_current·first_fraction·decay^(k−1)) for k = 1..t−1 (paper: ≤30% from t−1, ≤15% from t−2, …).
/// INTERPRETATION: the fractions are of the current iteration's own pair count.
std::vector<int64_t> dno_replay_counts(int iteration, int64_t n_current, double first_fraction = 0.3,
                                       double decay = 0.5);

}  // namespace keel::learner
