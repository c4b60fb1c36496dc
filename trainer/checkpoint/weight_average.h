// Weight averaging of reward-model checkpoints — WARM (spec/rewards.md D3; Ramé et al. 2024,
// "WARM: On the Benefits of Weight Averaged Reward Models"; the PAR repo's "warm" baseline is
// "no shaping, a weight-averaged RM checkpoint"): M reward models of one architecture, fine-tuned
// from a shared start, become one with θ = Σ_m w_m θ_m. Used by `keel average-rm`.
// Deliberately not here: choosing the members (train them with keel train-rm, e.g. rm.ensemble.size
// with different seeds), model soups over policies, per-layer weights.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "models/model_config.h"

namespace keel::checkpoint {

/// θ = Σ_m w_m θ_m over state dicts [M] of identical tensor names and shapes (accumulated in fp64,
/// written in the first member's dtype). weights: empty = uniform 1/M; else M values >= 0 with a
/// positive sum, normalised to sum 1. where[m] names member m in errors (a name or shape mismatch
/// names the tensor and both members).
std::map<std::string, at::Tensor> average_state_dicts(const std::vector<std::map<std::string, at::Tensor>>& dicts,
                                                      std::vector<double> weights, const std::vector<std::string>& where);

/// Loads the HF reward models (score.weight) at `paths` (>= 2), checks that they share one
/// architecture (model_type, layer / head counts, RoPE, norm eps, vocabulary: an error names the path
/// and the field), averages their weights and writes an HF *ForSequenceClassification directory
/// `out_dir` with the first member's config and tokenizer files. Returns the weights used.
std::vector<double> average_reward_models(const std::vector<std::string>& paths, const std::vector<double>& weights,
                                          const std::string& out_dir, const models::ModelRegistry& registry);

}  // namespace keel::checkpoint
