// EPO-Safe 1-bit danger signal as a cost channel (spec rewards.md B9; Gallego, arXiv 2604.23210 —
// summary only). The paper optimises prompts by reflection; the RL mapping is the spec's
// INTERPRETATION:
//   C(τ) = Σ_t d_t (or the mean over steps);  R_eff = R_task − Σ_channels λ_c · C_c(τ)
//   Lagrangian: λ ← max(0, λ + η_λ · (mean_batch C − c_budget)) once per iteration
// The danger bits stay their own channel (logged separately), never silently folded into R_task
// upstream. λ of a Lagrangian channel is state (CostMultiplier, checkpointed).
//
// Legend: N episodes, T steps, C cost channels.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct CostChannelOptions {
  std::string name = "danger";
  std::string reduce = "sum";  ///< sum | mean over the valid steps
  double lambda = 1.0;         ///< λ_0 (fixed penalty when !lagrangian)
  bool lagrangian = false;
  double lr = 0.05;            ///< η_λ
  double budget = 0.0;         ///< c_budget
};

/// Episode cost [N] of bits [N, T] (0/1) over step_mask [N, T] bool (undefined = all).
at::Tensor episode_cost(const at::Tensor& bits, const at::Tensor& step_mask, const CostChannelOptions& o);
/// R_task − λ·C [N].
at::Tensor cost_penalized_reward(const at::Tensor& r_task, const at::Tensor& cost, double lambda);

/// λ of one channel with the projected Lagrangian ascent step.
class CostMultiplier {
 public:
  explicit CostMultiplier(const CostChannelOptions& o) : lambda_(o.lambda), o_(o) {}
  double lambda() const { return lambda_; }
  /// One iteration's update from the batch costs [N]; a fixed channel keeps λ. Returns the new λ.
  double update(const at::Tensor& cost);
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");

 private:
  double lambda_;
  CostChannelOptions o_;
};

void read_cost_channel_options(config::Reader& r, CostChannelOptions& o);
/// Reads `cost_channels: [{name, reduce, lambda, lagrangian, lr, budget}]` (unique names).
void read_cost_channels(config::Reader& r, std::vector<CostChannelOptions>& out);

}  // namespace keel::rewards
