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

/// The expert's play of `r` in a fresh environment (reset with seed 0): its actions and each step's
/// result, until done or `max_turns`.
struct ExpertRun {
  std::vector<std::string> actions;
  std::vector<StepResult> steps;
  std::string joined() const {  ///< the actions, one a line
    std::string s;
    for (const auto& a : actions) s += (s.empty() ? "" : "\n") + a;
    return s;
  }
};
inline ExpertRun roll_expert(const EnvFactory& f, const data::PromptRecord& r, int max_turns) {
  auto env = f.make();
  env->reset(r, 0);
  ExpertRun out;
  while (static_cast<int>(out.steps.size()) < max_turns) {
    const auto a = env->expert_action();
    if (!a) break;
    out.actions.push_back(*a);
    out.steps.push_back(env->step(*a));
    if (out.steps.back().done) break;
  }
  return out;
}

}  // namespace keel::env::testing
