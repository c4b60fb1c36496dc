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
#include "trainer/env/episodes.h"

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

/// Whether one of `errors` contains `text`.
inline bool has_error(const std::vector<std::string>& errors, const std::string& text) {
  for (const auto& e : errors)
    if (e.find(text) != std::string::npos) return true;
  return false;
}

/// The expert's actions of `r` (reset with seed 0), one a line, and each step's result.
struct ExpertRun {
  std::vector<StepResult> steps;
  std::string actions;
};
inline ExpertRun roll_expert(const EnvFactory& f, const data::PromptRecord& r, int max_turns) {
  auto p = play_expert(f, r, 0, max_turns);
  ExpertRun out;
  for (const auto& a : p.actions) out.actions += (out.actions.empty() ? "" : "\n") + a;
  out.steps = std::move(p.steps);
  return out;
}

}  // namespace keel::env::testing
