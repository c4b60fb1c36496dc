// The numerics guard: a non-finite loss or gradient norm skips the optimizer step (gradients are
// dropped, the step is counted); after `rollback_after` consecutive bad steps the trainer rolls back
// to the last good checkpoint. A rollback does not replay the same steps: training goes on with the
// next batches (new data, new sampling seeds) from the restored weights. More than max_rollbacks
// rollbacks with no finite step between them means the trouble is not one bad batch (a learning
// rate that diverges, a broken checkpoint): the trainer stops with the cause. Pure bookkeeping — the
// trainer acts on the verdict.
#pragma once

#include <cstdint>

namespace keel::learner {

class NumericsGuard {
 public:
  enum class Verdict { kOk, kSkip, kRollback };

  explicit NumericsGuard(int rollback_after, int max_rollbacks = 3)
      : rollback_after_(rollback_after), max_rollbacks_(max_rollbacks) {}

  /// Verdict for one optimizer step.
  Verdict check(double loss, double grad_norm);
  /// Whether one more rollback is allowed: false once max_rollbacks rollbacks happened with no
  /// finite step since the first of them.
  bool may_roll_back() const { return rollbacks_in_a_row_ < max_rollbacks_; }
  /// After the trainer restored a checkpoint.
  void after_rollback() {
    consecutive_ = 0;
    ++rollbacks_;
    ++rollbacks_in_a_row_;
  }
  /// Rollbacks since the last finite step.
  int rollbacks_in_a_row() const { return rollbacks_in_a_row_; }
  /// The loss and gradient norm of the last non-finite step (for the error that ends the run).
  double last_bad_loss() const { return bad_loss_; }
  double last_bad_grad_norm() const { return bad_grad_norm_; }

  /// On resume: the skipped-step count the checkpoint recorded (the count goes on from there).
  void resume_from(int64_t skipped_total) { skipped_ = skipped_total; }

  int consecutive_bad() const { return consecutive_; }
  int64_t skipped_total() const { return skipped_; }
  int64_t rollbacks() const { return rollbacks_; }

 private:
  int rollback_after_;
  int max_rollbacks_;
  int consecutive_ = 0;
  int rollbacks_in_a_row_ = 0;
  double bad_loss_ = 0, bad_grad_norm_ = 0;
  int64_t skipped_ = 0;
  int64_t rollbacks_ = 0;
};

}  // namespace keel::learner
