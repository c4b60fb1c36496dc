// The run directory: <run.output_dir>/<run.name>/ holding the resolved config, the git revision
// and command line (written atomically at start-up), metrics, checkpoints and plots. One job at a
// time owns it (an flock on <run>/.lock), a fresh run does not silently replace another run's
// checkpoints, and a resume refuses a checkpoint written for another model or data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace keel::checkpoint {

struct RunDirInfo {
  std::filesystem::path path;
};

/// Creates the run directory and writes config.yaml (the resolved config, as print-config shows
/// it), git_revision and command (argv joined). Existing files are replaced atomically.
RunDirInfo prepare_run_dir(const std::filesystem::path& dir, const std::string& resolved_yaml,
                           const std::vector<std::string>& argv);

/// An exclusive flock on <dir>/.lock (creating `dir`), held until destruction or process exit (the
/// kernel drops it when a killed process's descriptors close, so a stale lock cannot block a
/// resume). A directory another process holds is keel::Error naming it and that process's pid.
class RunDirLock {
 public:
  explicit RunDirLock(const std::filesystem::path& dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

/// A fresh run (run.resume none) into `dir`: when it holds complete checkpoints of an earlier run,
/// keel::Error saying how to resume or replace them, unless `overwrite` — then the checkpoints,
/// metrics.jsonl and tensorboard/ are removed (with a warning). `checkpoints` is <dir>/checkpoints.
void prepare_fresh_run(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& checkpoints,
                       bool overwrite);

/// The resolved config a checkpoint was written with (<checkpoint>/config.yaml).
constexpr const char* kCheckpointConfig = "config.yaml";

/// The keys whose values must agree between the config a checkpoint was written with and the one
/// resuming it (the model's shape and source, the data, the learner): "key: saved -> current" for
/// each that differs. Both are resolved configs (every key present).
std::vector<std::string> resume_mismatches(const std::string& saved_yaml, const std::string& current_yaml);

/// keel::Error naming the differing keys when checkpoint `dir` was written for another model, data
/// or learner than `current_yaml`'s (a checkpoint without config.yaml is not checked).
void check_resume_matches(const std::filesystem::path& dir, const std::string& current_yaml);

}  // namespace keel::checkpoint
