// Shared plumbing of the registry glue (register.cpp, register_group_{a,b,c}.cpp):
// how a registered scheme names and fetches its inputs from a RewardInput, and how it packs its
// RewardOutput. No reward math here — every formula lives in the scheme's own file pair.
//
// Signal specs. A scheme parameter that says where an input comes from is a string:
//   rm_scores | criterion_scores | step_scores | response_lengths   the RewardInput field
//   prior.<component>                                                an earlier component's [N] rewards
//   extra.<key>                                                      RewardInput::extra[key]
//   meta.<key>                                                       a number / bool in every sample's metadata
// The glue TORCH_CHECKs the signal exists and has leading dimension N, naming the scheme and parameter.
//
// Legend: N samples, S steps, M reference slots.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/reward.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards::glue {

/// Reads a signal-spec parameter (default in `spec` on entry) and checks its syntax; `allow_none`
/// also accepts "none" (the input is absent, e.g. no external reward to add).
void read_signal(config::Reader& r, const std::string& key, std::string& spec, const std::string& doc,
                 bool allow_none = false);

/// The signal as a float64 CPU tensor with leading dimension N ([N] or [N, ...]).
at::Tensor fetch_signal(const RewardInput& in, const std::string& spec, const std::string& scheme,
                        const std::string& param);
/// fetch_signal, additionally checked to be [N].
at::Tensor fetch_vector(const RewardInput& in, const std::string& spec, const std::string& scheme,
                        const std::string& param);

/// RewardInput::extra[key], or an undefined tensor when absent (shape-checked when present).
at::Tensor extra_or_undefined(const RewardInput& in, const std::string& key, const std::string& scheme);
/// RewardInput::extra[key], TORCH_CHECKed present with leading dimension N.
at::Tensor require_extra(const RewardInput& in, const std::string& key, const std::string& scheme);

/// response_lengths [N] as float64 (required).
at::Tensor lengths_of(const RewardInput& in, const std::string& scheme);

/// Reference rewards of each sample (PAR, LSC): values [N, M] float64 and mask [N, M] bool.
/// From extra[key] (with extra[key + "_mask"] when present), else from the metadata field `key`
/// (a list of numbers per sample; absent / null = no references), else [N, 0].
struct Refs {
  at::Tensor values;
  at::Tensor mask;
};
Refs fetch_refs(const RewardInput& in, const std::string& key, const std::string& scheme);

/// Valid-step mask [N, S] for per-step values [N, S]: step_mask, else step_ends >= 0, else all true.
at::Tensor step_mask_of(const RewardInput& in, const at::Tensor& steps, const std::string& scheme);

/// Gold answers of sample i from metadata[key]: a string, a number, or a list of them.
std::vector<std::string> gold_strings(const RewardInput& in, int64_t i, const std::string& key,
                                      const std::string& scheme);

/// Rewards [N] as float32, the RewardOutput convention.
RewardOutput make_output(const at::Tensor& rewards);
/// Mean of a tensor (0 when empty) — for metrics.
double mean_of(const at::Tensor& t);

/// Group entry points (one per spec group, each in its own .cpp).
void register_group_a(RewardRegistry& reg);
void register_group_b(RewardRegistry& reg);
void register_group_c(RewardRegistry& reg);

}  // namespace keel::rewards::glue
