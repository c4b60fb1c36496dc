#include "trainer/learner/numerics_guard.h"

#include <cmath>

namespace keel::learner {

NumericsGuard::Verdict NumericsGuard::check(double loss, double grad_norm) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    consecutive_ = 0;
    return Verdict::kOk;
  }
  ++skipped_;
  ++consecutive_;
  return consecutive_ >= rollback_after_ ? Verdict::kRollback : Verdict::kSkip;
}

}  // namespace keel::learner
