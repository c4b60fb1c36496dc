// DNO-Prct pure pieces (spec §8.3). See dno.h.
#include "trainer/learner/dno.h"

#include <cmath>

#include "base/error.h"

namespace keel::learner {

int dno_reference_iterate(int iteration, bool refresh_every_iter) {
  if (iteration < 1) fail("DNO iteration must be >= 1, got {}", iteration);
  return refresh_every_iter ? iteration : 1;
}

bool dno_refresh_reference(int iteration, bool refresh_every_iter) {
  if (iteration < 1) fail("DNO iteration must be >= 1, got {}", iteration);
  return refresh_every_iter && iteration >= 2;
}

std::vector<PreferencePair> dno_select_pairs(const std::vector<DnoCandidate>& candidates, const DnoPairRules& rules) {
  std::vector<PreferencePair> out;
  const int64_t n = static_cast<int64_t>(candidates.size());
  for (int64_t i = 0; i < n; ++i) {
    const DnoCandidate& pos = candidates[i];
    if (pos.auto_negative || pos.score < rules.min_positive_score) continue;
    const double margin = pos.is_student ? rules.margin_student : rules.margin_gold;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const DnoCandidate& neg = candidates[j];
      if (neg.auto_negative || pos.score - neg.score >= margin) out.push_back({i, j});
    }
  }
  return out;
}

std::vector<int64_t> dno_replay_counts(int iteration, int64_t n_current, double first_fraction, double decay) {
  if (iteration < 1) fail("DNO iteration must be >= 1, got {}", iteration);
  if (n_current < 0) fail("DNO pair count must be >= 0, got {}", n_current);
  if (!(first_fraction >= 0 && first_fraction <= 1)) fail("DNO replay fraction must be in [0, 1], got {}", first_fraction);
  if (!(decay >= 0 && decay <= 1)) fail("DNO replay decay must be in [0, 1], got {}", decay);
  std::vector<int64_t> out;
  double frac = first_fraction;
  for (int k = 1; k < iteration; ++k) {
    // small epsilon so that e.g. 100·0.3 = 30.000000000000004 or 29.999999999999996 floors to 30
    out.push_back(static_cast<int64_t>(std::floor(static_cast<double>(n_current) * frac + 1e-9)));
    frac *= decay;
  }
  return out;
}

}  // namespace keel::learner
