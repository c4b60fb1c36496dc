// The numerics guard: a non-finite loss or gradient norm skips the optimizer step (gradients are
// dropped, the step is counted); after `rollback_after` consecutive bad steps the trainer rolls back
// to the last good checkpoint. Pure bookkeeping — the trainer acts on the verdict.
#pragma once

#include <cstdint>

namespace keel::learner {

class NumericsGuard {
 public:
  enum class Verdict { kOk, kSkip, kRollback };

  explicit NumericsGuard(int rollback_after) : rollback_after_(rollback_after) {}

  /// Verdict for one optimizer step.
  Verdict check(double loss, double grad_norm);
  /// After the trainer restored a checkpoint.
  void after_rollback() {
    consecutive_ = 0;
    ++rollbacks_;
  }

  /// On resume: the skipped-step count the checkpoint recorded (the count goes on from there).
  void resume_from(int64_t skipped_total) { skipped_ = skipped_total; }

  int consecutive_bad() const { return consecutive_; }
  int64_t skipped_total() const { return skipped_; }
  int64_t rollbacks() const { return rollbacks_; }

 private:
  int rollback_after_;
  int consecutive_ = 0;
  int64_t skipped_ = 0;
  int64_t rollbacks_ = 0;
};

}  // namespace keel::learner
