// register_builtin_environments: every built-in environment with its companion task.
#include "trainer/env/environment.h"

namespace keel::env {

void register_calculator(EnvRegistry& envs, data::TaskRegistry& tasks);
void register_guessing(EnvRegistry& envs, data::TaskRegistry& tasks);
void register_gridworld(EnvRegistry& envs, data::TaskRegistry& tasks);
void register_retry(EnvRegistry& envs);
void register_docsearch(EnvRegistry& envs, data::TaskRegistry& tasks);
void register_subprocess(EnvRegistry& envs);

void register_builtin_environments(EnvRegistry& envs, data::TaskRegistry& tasks) {
  register_calculator(envs, tasks);
  register_guessing(envs, tasks);
  register_gridworld(envs, tasks);
  register_retry(envs);
  register_docsearch(envs, tasks);
  register_subprocess(envs);
}

}  // namespace keel::env
