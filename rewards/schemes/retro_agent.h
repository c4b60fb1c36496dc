// RetroAgent intrinsic numerical feedback — subtask progress against prior attempts (spec
// rewards.md B8b; Zhang et al., arXiv 2603.08561, repo zhangxy-2019/RetroAgent env_manager.py):
//   φ_i     = 1 if the episode succeeded, else completed/total subtasks of the hindsight reflection
//             (0 if none or unparsable); binary_only: φ = success
//   I_i     = max(0, φ_i − φ_prev[task])            (only improvements are rewarded)
//   r_int,i = I_i, or I_i − mean_group(I) with group_relative
//   R_i     = r_ext,i + c_int · clip(r_int,i)       (clip off by default)
//   after the group: φ_prev[task] ← max(φ_prev[task], group success rate)
// The per-task baseline is state (RetroTaskBaseline, checkpointed). The active released code keeps
// a running max; its comments mention an EMA (γ = 0.9), offered as baseline: ema (INTERPRETATION).
// Not here: parsing the reflection JSON (the scorer's job) and the lessons memory.
//
// Legend: N episodes (G per task / prompt).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct RetroOptions {
  double coef = 1.0;                 ///< c_int (intrinsic_reward_coefficient)
  bool group_relative = false;       ///< subtract the group mean of I
  bool binary_only = false;          ///< potential_based_on_binary_success
  std::optional<double> clip_min;    ///< off by default
  std::optional<double> clip_max;
  std::string baseline = "running_max";  ///< running_max | ema
  double ema_decay = 0.9;
};

/// φ [N] (float64). success [N] (0/1), completed [N], total [N] subtask counts, parsed [N] bool
/// (undefined = all parsed).
at::Tensor retro_potential(const at::Tensor& success, const at::Tensor& completed, const at::Tensor& total,
                           const at::Tensor& parsed, const RetroOptions& o);
/// Clipped, optionally group-centred intrinsic reward [N] from φ [N], φ_prev [N], group_ids [N].
at::Tensor retro_intrinsic(const at::Tensor& phi, const at::Tensor& phi_prev, const at::Tensor& group_ids,
                           const RetroOptions& o);
/// R [N] = r_ext + coef·r_int.
at::Tensor retro_reward(const at::Tensor& r_ext, const at::Tensor& r_int, const RetroOptions& o);

/// Per-task baseline φ_prev (starts at 0 for an unseen task).
class RetroTaskBaseline {
 public:
  /// φ_prev of each row's task [N] (float64).
  at::Tensor lookup(const std::vector<std::string>& tasks) const;
  /// Folds each group's success rate into its task's baseline. tasks [N] (one per row; rows of one
  /// group share a task), success [N], group_ids [N].
  void update(const std::vector<std::string>& tasks, const at::Tensor& success, const at::Tensor& group_ids,
              const RetroOptions& o);
  const std::map<std::string, double>& values() const { return phi_prev_; }
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");

 private:
  std::map<std::string, double> phi_prev_;
};

void read_retro_options(config::Reader& r, RetroOptions& o);

}  // namespace keel::rewards
