// Helpers shared by the built-in environments' tests: an environment and its companion task built
// from YAML params, as `env.params` and `data.task_params` would give them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/node.h"
#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"

namespace keel::env::testing {

struct Built {
  std::unique_ptr<EnvFactory> env;
  std::unique_ptr<data::Task> task;
  std::vector<std::string> errors;  ///< the readers' errors ("env.<key>: ...", "task.<key>: ...")
};

/// Registers with `add` (an environment's register function), then builds environment `name` from
/// `env_yaml` and its task from `task_yaml`.
template <typename RegisterFn>
Built build(RegisterFn add, const std::string& name, const std::string& env_yaml = "{}",
            const std::string& task_yaml = "{}") {
  EnvRegistry envs("environment");
  data::TaskRegistry tasks("task");
  add(envs, tasks);
  auto root = config::parse_yaml_string("env: " + env_yaml + "\ntask: " + task_yaml + "\n", "t.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "", d);
  Built b;
  r.section("env", "", [&](config::Reader& s) { b.env = envs.get(name).fn(s); });
  r.section("task", "", [&](config::Reader& s) { b.task = tasks.get(name).fn(s); });
  b.errors = d.errors();
  return b;
}

}  // namespace keel::env::testing
