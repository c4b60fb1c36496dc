// The PAR repo's RM-reward shaping pipeline as one stateful object (spec rewards.md A1–A2):
//   length penalty → ceil → exactly one of {vanilla/warm, meanstd, clip, minmax, lsc, par,
//   sigmoid, sigmoidk2, sigmoidk3, tanh, fittedpoly, centered, sgfc}
// It only composes the pure transforms of pre_shaping.h, running_norm.h, lsc.h and par.h and owns
// the running statistics (checkpointed through save_state / load_state). It is what a registry
// entry `shaping: <name>` wraps; the registry glue itself lives with the reward interface.
//
// Legend: N responses, M reference slots.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/lsc.h"
#include "rewards/schemes/par.h"
#include "rewards/schemes/pre_shaping.h"
#include "rewards/schemes/running_norm.h"
#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct RmShapingOptions {
  std::string shaping = "vanilla";  ///< see rm_shaping_names()
  LengthPenaltyOptions length_penalty;
  CeilOptions ceil;
  ParOptions par;  ///< preset of the sigmoid-family name, then the `par` section
  MeanStdOptions meanstd;
  MinMaxOptions minmax;
  LscOptions lsc;
};

/// Every accepted `shaping` name.
const std::vector<std::string>& rm_shaping_names();

class RmShaper {
 public:
  explicit RmShaper(RmShapingOptions o) : o_(std::move(o)) {}
  /// Shaped rewards [N]. r [N]; length [N] (needed when the length penalty is on); r_ref [N, M] and
  /// ref_mask [N, M] (needed by lsc and the centred sigmoid family; may be undefined otherwise).
  /// meanstd / clip / minmax fold the batch (after length penalty and ceil) into their running
  /// statistics first, then shape with the updated statistics (the newer PAR code's order).
  at::Tensor apply(const at::Tensor& r, const at::Tensor& length, const at::Tensor& r_ref, const at::Tensor& ref_mask);
  const RmShapingOptions& options() const { return o_; }
  /// Keys "<prefix>meanstd/…" and "<prefix>minmax/…".
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");

 private:
  RmShapingOptions o_;
  RunningMeanStd stats_;
  RunningMinMax range_;
};

/// Reads {shaping, length_penalty: {...}, ceil: <float>, par: {...}, meanstd: {...}, minmax: {...}, lsc: {...}}.
void read_rm_shaping_options(config::Reader& r, RmShapingOptions& o);

}  // namespace keel::rewards
