// Helpers shared by the reward-scheme tests: read an options struct from YAML text through its
// reader function, and small tensor constructors. Test-only.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "base/node.h"
#include "base/reader.h"

namespace keel::rewards::testing {

/// Parses `yaml` (the body of a params section) with `read(reader, opts)`; returns the errors.
template <typename Opts, typename ReadFn>
std::vector<std::string> read_yaml(const std::string& yaml, Opts& opts, ReadFn read) {
  config::Node root = config::parse_yaml_string("p:\n" + yaml, "t.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "", d);
  r.section("p", "", [&](config::Reader& sub) { read(sub, opts); });
  r.finish();
  return d.errors();
}

inline torch::Tensor dt(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }
inline torch::Tensor lt(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }
inline double sig(double z) { return 1.0 / (1.0 + std::exp(-z)); }

}  // namespace keel::rewards::testing
