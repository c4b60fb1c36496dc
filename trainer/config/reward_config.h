// Config section of the reward: a list of named components (registered schemes) with weights,
// each keeping its scheme-specific parameters as a raw tree for the scheme's own reader.
#pragma once

#include <string>
#include <vector>

#include "trainer/config/node.h"

namespace keel::config {

class Reader;
struct KnownNames;

struct RewardComponent {
  std::string scheme;                      // registered reward scheme name
  std::string name;                        // metric name; "" = scheme
  double weight = 1.0;
  Node params;                             // scheme-specific keys, read by the scheme's factory
  std::string params_path;                 // YAML path of params, for the factory's messages
};

struct RewardSection {
  std::vector<RewardComponent> components;  // empty = the task's own verifier
  double fallback = 0.0;                   // reward when a verifier times out / throws
  double timeout_ms = 2000;                // per-sample deadline of rule-based scoring
  int threads = 0;                         // scorer thread pool; 0 = cores
};

void read_reward(Reader& r, RewardSection& c, const KnownNames& known);

}  // namespace keel::config
