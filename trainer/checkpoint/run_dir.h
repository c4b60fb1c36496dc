// The run directory: <run.output_dir>/<run.name>/ holding the resolved config, the git revision
// and command line (written atomically at start-up), metrics, checkpoints and plots.
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

}  // namespace keel::checkpoint
