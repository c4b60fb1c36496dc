// What a run's reward is made of, as data: the components (registered schemes with weights and
// their raw YAML params) and the shared scorer's limits. The config layer fills it from
// `reward:` (trainer/config/reward_config.h); CompositeReward (composite.h) builds from it. It
// lives here, below the trainer, so that rewards/ needs nothing from the trainer's config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/node.h"

namespace keel::rewards {

struct ComponentSpec {
  std::string scheme;       // registered reward scheme name
  std::string name;         // metric / prior name; "" = scheme
  double weight = 1.0;
  config::Node params;      // scheme-specific keys, read by the scheme's factory
  std::string params_path;  // YAML path of params, for the factory's messages
};

/// A learned judge of the judge stage (rewards/judges/judge.h): it runs before the components and
/// writes the signals they read.
struct JudgeSpec {
  std::string type;         // registered judge type (yes_no | prm | reward_model)
  std::string name;         // metrics prefix judge/<name>/
  config::Node params;      // type-specific keys, read by the judge's factory
  std::string params_path;  // YAML path of params, for the factory's messages
};

struct RewardSpec {
  std::vector<JudgeSpec> judges;          // run in order before the components
  std::vector<ComponentSpec> components;  // empty = the task's own verifier
  double fallback = 0.0;                  // reward when a verifier times out / throws
  double timeout_ms = 2000;               // per-sample deadline of rule-based scoring
  int threads = 0;                        // scorer thread pool; 0 = cores
  int64_t max_bytes = int64_t{1} << 20;   // longer responses are malformed (fallback reward)
  int64_t max_stuck_workers = 64;         // retired (stuck) verifier threads before the scorer stops
  double warn_error_share = 0.25;         // warn when a component's verifier fails on more of a step's samples
  int max_all_error_steps = 3;            // stop after this many steps in a row where a verifier failed on all; 0 = never
};

}  // namespace keel::rewards
