// Test helper of the config tests: load a YAML text as "c.yaml" and get the loader's message.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/config/config.h"

namespace keel::config::testing {

/// "" when `yaml` (as c.yaml, with `overrides`, against `known`) loads, else the loader's message
/// (one line per error); the loaded config into `out` when given.
inline std::string load_error(const std::string& yaml, RunConfig* out = nullptr,
                              const std::vector<std::string>& overrides = {}, const KnownNames& known = {}) {
  try {
    LoadOptions opt;
    opt.overrides = overrides;
    RunConfig cfg = load_config_node(parse_yaml_string(yaml, "c.yaml"), opt, known);
    if (out) *out = cfg;
    return "";
  } catch (const keel::Error& e) {
    return e.what();
  }
}

}  // namespace keel::config::testing
