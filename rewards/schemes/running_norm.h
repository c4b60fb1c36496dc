// Running-statistics reward transforms from the PAR comparison (spec rewards.md A2, items 3–5):
// meanstd (standardise by the whole-training mean / population std), clip (clamp to μ ± σ) and
// minmax (rescale by the running min / max). The statistics are state that must be checkpointed;
// RunningMeanStd / RunningMinMax save and load it bit-exactly through a StateDict.
// Statistics are taken over the whole batch (not per group) and kept in float64.
//
// Legend: N rewards in the current batch.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

/// Running count / mean / M2 with the Chan–Welford parallel update; population variance M2/count.
/// The first update initialises the statistics from the batch itself.
class RunningMeanStd {
 public:
  /// Folds a batch x [N] (any float dtype; NaNs are not filtered) into the statistics.
  void update(const at::Tensor& x);
  double count() const { return count_; }
  double mean() const { return mean_; }
  /// Population variance (0 before any update).
  double var() const { return count_ > 0 ? m2_ / count_ : 0.0; }

  /// Keys "<prefix>count", "<prefix>mean", "<prefix>m2" (0-dim float64).
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");

 private:
  double count_ = 0.0;
  double mean_ = 0.0;
  double m2_ = 0.0;
};

/// Running minimum / maximum of every reward seen so far.
class RunningMinMax {
 public:
  void update(const at::Tensor& x);  ///< x [N]
  bool initialized() const { return initialized_; }
  double min() const { return min_; }
  double max() const { return max_; }
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");

 private:
  bool initialized_ = false;
  double min_ = 0.0;
  double max_ = 0.0;
};

struct MeanStdOptions {
  std::string zero_std = "floor";  ///< floor: σ = sqrt(max(var, var_floor)) (newer code); one: σ := 1 when σ = 0 (older)
  double var_floor = 1e-8;
};

/// The σ that meanstd and clip divide / clamp by.
double running_std(const RunningMeanStd& s, const MeanStdOptions& o);
/// (r − μ)/σ [N] with the current statistics (call update first: the newer code updates, then shapes).
at::Tensor meanstd_reward(const at::Tensor& r, const RunningMeanStd& s, const MeanStdOptions& o);
/// clamp(r, μ − σ, μ + σ) [N].
at::Tensor clip_reward(const at::Tensor& r, const RunningMeanStd& s, const MeanStdOptions& o);

struct MinMaxOptions {
  double range_floor = 1e-8;  ///< (r − min)/max(max − min, range_floor)
};
/// (r − min)/max(max − min, floor) [N]; zeros before any update.
at::Tensor minmax_reward(const at::Tensor& r, const RunningMinMax& s, const MinMaxOptions& o);

void read_meanstd_options(config::Reader& r, MeanStdOptions& o);
void read_minmax_options(config::Reader& r, MinMaxOptions& o);

}  // namespace keel::rewards
