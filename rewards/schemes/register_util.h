// Shared plumbing of the registry glue (register.cpp, register_group_{a,b,c}.cpp):
// how a registered scheme names and fetches its inputs from a RewardInput, and how it packs its
// RewardOutput. No reward math here — every formula lives in the scheme's own file pair.
//
// Signal specs. A scheme parameter that says where an input comes from is a string:
//   prior                                                            the earlier components' sum [N] (unweighted)
//   correct                                                          the earlier verifiers' correctness [N] (0/1)
//   rm_scores | criterion_scores | step_scores | response_lengths   the RewardInput field
//   prior.<component>                                                an earlier component's [N] rewards
//   extra.<key>                                                      RewardInput::extra[key]
//   meta.<key>                                                       a number / bool in every sample's metadata
// The glue TORCH_CHECKs the signal exists and has leading dimension N, naming the scheme and parameter.
//
// Contracts. Every factory declares (rewards::require_input) exactly the inputs its score() will
// TORCH_CHECK, given its parameters: read_signal declares a signal parameter itself; a parameter read
// only in some modes is read with read_signal_spec and declared with declare_signal in those modes.
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

/// Reads a signal-spec parameter (default in `spec` on entry), checks its syntax and declares the
/// signal as the scheme's requirement (declare_signal); `allow_none` also accepts "none" (the input
/// is absent, e.g. no external reward to add).
void read_signal(config::Reader& r, const std::string& key, std::string& spec, const std::string& doc,
                 bool allow_none = false);
/// read_signal without the declaration, for a parameter that only some modes read: the factory calls
/// declare_signal in those modes. Returns whether the spec is well-formed.
bool read_signal_spec(config::Reader& r, const std::string& key, std::string& spec, const std::string& doc,
                      bool allow_none = false);
/// Checks the syntax of a signal spec read elsewhere (e.g. by an options reader), reporting a bad one
/// at parameter `key`. Returns whether it is well-formed.
bool check_signal(config::Reader& r, const std::string& key, const std::string& spec, bool allow_none = false);
/// Declares the signal `spec` as a requirement of the scheme being built (rewards::require_input),
/// under parameter `key`; "none" and response_lengths (every rollout has it) declare nothing.
void declare_signal(config::Reader& r, const std::string& key, const std::string& spec);

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
/// "env": the multi-turn environment's outcome (register_env.cpp).
void register_env_scheme(RewardRegistry& reg);

}  // namespace keel::rewards::glue
