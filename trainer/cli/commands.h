// Options structs and entry points of the subcommands (implemented in cmd_*.cpp).
#pragma once

#include <string>
#include <vector>

namespace keel::cli {

struct ConfigArgs {
  std::string config;                   ///< YAML path
  std::vector<std::string> overrides;   ///< key.path=value
  int world_size = 0;                   ///< 0 = WORLD_SIZE from the environment, else 1
  std::string log_level;                ///< --log-level; "" = the config's run.log_level
};

struct VersionArgs {
  bool matmul = false;                  ///< also measure fp32 matmul GFLOP/s
  bool library_env = false;             ///< print the startup library settings as shell exports
  bool kernel_paths = false;            ///< print the CPU kernel paths this CPU has (KEEL_ISA values)
};
int run_version(const VersionArgs& a);

struct ListArgs {
  std::string what = "all";
};
int run_list(const ListArgs& a);

int run_validate(const ConfigArgs& a);

/// keel train: the main job. `argv` is recorded in the run directory.
int run_train(const ConfigArgs& a, const std::vector<std::string>& argv);

/// keel train-rm: Bradley–Terry reward-model training on preference JSONL (cmd_train_rm.cpp).
int run_train_rm(const ConfigArgs& a, const std::vector<std::string>& argv);

struct AverageRmArgs {
  std::string out;                      ///< output HF directory
  std::vector<std::string> models;      ///< reward-model directories (>= 2)
  std::string weights_csv;              ///< "0.5,0.3,0.2"; "" = uniform
};
/// keel average-rm: WARM weight averaging of reward models (cmd_average_rm.cpp).
int run_average_rm(const AverageRmArgs& a);

struct PrintConfigArgs {
  ConfigArgs cfg;
  bool reference = false;               ///< print configs/reference.yaml instead
  bool comments = false;
};
int run_print_config(const PrintConfigArgs& a);

/// World size for the batch arithmetic: explicit, else $WORLD_SIZE, else $SLURM_NTASKS, else 1.
int resolve_world_size(int explicit_world_size);

}  // namespace keel::cli
