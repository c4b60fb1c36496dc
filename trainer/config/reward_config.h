// Config section of the reward: a list of named components (registered schemes) with weights,
// each keeping its scheme-specific parameters as a raw tree for the scheme's own reader.
#pragma once

#include <cstdint>
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
  int64_t max_bytes = int64_t{1} << 20;    // longer responses are malformed (fallback reward)
  int64_t max_stuck_workers = 64;          // retired (stuck) verifier threads before the scorer stops
};

void read_reward(Reader& r, RewardSection& c, const KnownNames& known);

}  // namespace keel::config
