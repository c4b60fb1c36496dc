#include "trainer/learner/numerics_guard.h"

#include <cmath>

namespace keel::learner {

NumericsGuard::Verdict NumericsGuard::check(double loss, double grad_norm) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) {
    consecutive_ = 0;
    rollbacks_in_a_row_ = 0;
    return Verdict::kOk;
  }
  bad_loss_ = loss;
  bad_grad_norm_ = grad_norm;
  ++skipped_;
  ++consecutive_;
  return consecutive_ >= rollback_after_ ? Verdict::kRollback : Verdict::kSkip;
}

}  // namespace keel::learner
