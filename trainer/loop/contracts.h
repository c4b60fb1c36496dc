// The run's data contracts, resolved. Every registered piece a config selects declares what it
// requires from the step's batch (estimators and learners in their registry traits, reward schemes
// from their factories: base/contract.h); the stages produce inputs depending on the config (the
// rollout: texts, tokens, masks, behaviour log-probs; the data: the records' metadata fields; the
// reward components, in order: prior.<name>, prior, correct; the reference model; the critic; the
// colocated sampler: ReMax's greedy baselines; advantage.<est>.judge reward_order: a pairwise
// judge). A requirement no stage produces is a config error at the key that asked for it, naming
// the missing input and what would produce it — at `keel validate` and at the start of `keel
// train` alike (KnownNames::contracts), so that what validates, trains.
#pragma once

#include <string>
#include <vector>

namespace keel::config {
struct RunConfig;
class Node;
class Diagnostics;
}  // namespace keel::config

namespace keel::data {
class PromptSource;
}

namespace keel::loop {

struct ContractError {
  std::string key;      ///< YAML path of the setting that asked for the input
  std::string message;  ///< what is missing and what would produce it
};

/// Every unmet requirement of `cfg` (and the checks that read registry traits: an estimator's
/// critic, grouping and outcome-only use against the learner, samples per prompt and the KL).
/// Names the loader reports as unknown are skipped. Metadata fields of a prompts file cannot be
/// known here; check_data_contracts checks them once the file is read.
std::vector<ContractError> check_contracts(const config::RunConfig& cfg);

/// check_contracts reported into `diag` at each key's file:line (the KnownNames::contracts hook).
void report_contracts(const config::RunConfig& cfg, const config::Node& root, config::Diagnostics& diag);

/// At the start of `keel train`, once the data is loaded: the reward components' meta.<key>
/// requirements against every training and held-out record. Throws keel::Error naming the file,
/// the record, the key and the component that needs it.
void check_data_contracts(const config::RunConfig& cfg, const data::PromptSource& data);

/// Whether the run holds the frozen reference model (a KL term of an RL learner, or DPO).
bool uses_reference(const config::RunConfig& cfg);

/// What would produce `input` (base/contract.h vocabulary), for messages.
std::string producer_of(const std::string& input);

}  // namespace keel::loop
