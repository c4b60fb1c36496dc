// ONI — online intrinsic rewards from LLM feedback, the reward combination and its bookkeeping
// (spec rewards.md B8a; Zheng et al., arXiv 2410.23022, repo facebookresearch/oni learner.py):
//   r_t = c_ext · r_env,t + c_llm · r_int,t / N(m_t)^β
// N(m_t) = occurrences of the current message in this episode so far, the current one included.
// Here: the combination, per-episode message counts (vectorised over a batch of step streams, and
// a streaming counter whose state survives checkpoints), and the retrieval/hashing label cache
// (`online_cls`: r_int = cached LLM label, 0 for unseen messages which are queued for annotation).
// Not here: the learned intrinsic reward models and their annotator (spec D4: oni_models.h).
//
// Legend: N environment streams, T steps.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct OniOptions {
  double c_ext = 1.0;  ///< extrinsic coefficient (README: 0.1 Score task, 10 others, 0 reward-free)
  double c_llm = 0.0;  ///< intrinsic coefficient (README runs: 0.4)
  double beta = 3.0;   ///< count exponent (beta_count_exponent)
};

/// r [N, T] = c_ext·r_env + c_llm·r_int / counts^β. counts [N, T] ≥ 1 where used.
at::Tensor oni_reward(const at::Tensor& r_env, const at::Tensor& r_int, const at::Tensor& counts, const OniOptions& o);

/// Per-episode occurrence counts [N, T] int64 (current step included; 0 at masked steps).
///   message_ids   [N, T] int64, one id per distinct message string
///   episode_start [N, T] bool, true on the first step of an episode (counters reset there)
///   step_mask     [N, T] bool (undefined = all valid)
at::Tensor oni_episode_counts(const at::Tensor& message_ids, const at::Tensor& episode_start, const at::Tensor& step_mask);

/// Streaming per-environment message counter for episodes that span rollout batches.
class OniMessageCounter {
 public:
  /// Counts `message` in environment `env`'s current episode and returns the new count.
  int64_t observe(int64_t env, const std::string& message);
  /// Starts a new episode for `env`.
  void reset(int64_t env);
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");
  const std::map<int64_t, std::map<std::string, int64_t>>& counts() const { return counts_; }

 private:
  std::map<int64_t, std::map<std::string, int64_t>> counts_;
};

/// ONI-Retrieval label cache: LLM labels keyed by the exact message string; unseen messages get 0
/// and are queued once for annotation.
class OniLabelCache {
 public:
  /// Cached label, or 0 (queuing the message for annotation when it is new).
  double reward(const std::string& message);
  void set_label(const std::string& message, double label);
  /// Removes and returns up to `max` queued messages, oldest first.
  std::vector<std::string> take_pending(size_t max);
  size_t num_pending() const { return pending_.size(); }
  void save_state(StateDict& out, const std::string& prefix = "") const;
  void load_state(const StateDict& in, const std::string& prefix = "");
  const std::map<std::string, double>& labels() const { return labels_; }

 private:
  std::map<std::string, double> labels_;
  std::deque<std::string> pending_;
};

/// Bytes of a string as a uint8 tensor and back (how strings enter a StateDict).
at::Tensor string_to_tensor(const std::string& s);
std::string tensor_to_string(const at::Tensor& t);

void read_oni_options(config::Reader& r, OniOptions& o);

}  // namespace keel::rewards
