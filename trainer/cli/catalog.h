// The catalog of every registered name, for `keel list` and for the config loader's name checks.
// Each area (credit, losses, rewards, tasks, models) adds its registry in catalog.cpp, one line each.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rewards/reward.h"
#include "trainer/config/config.h"

namespace keel::cli {

struct CatalogEntry {
  std::string name;
  std::string description;
};

/// kind ("estimators", "losses", "rewards", "tasks", "models", "templates") -> entries.
using Catalog = std::map<std::string, std::vector<CatalogEntry>>;

/// Fills the catalog from the built-in registries.
Catalog builtin_catalog();

/// Every reward scheme (verifiers and the spec's schemes): what configs may name.
const rewards::RewardRegistry& reward_registry();

/// The names the config loader checks, and the reward-parameter hook.
config::KnownNames known_names();

}  // namespace keel::cli
