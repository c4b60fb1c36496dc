// Test helper: runs the keel binary in a scratch directory and captures exit code and output.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace keel::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;  ///< stdout and stderr together
};

/// Runs `keel <args>` with the working directory `cwd` (shell-quoted args are the caller's job);
/// `env` is prepended as "VAR=value ..." assignments.
inline RunResult run_keel(const std::string& args, const std::filesystem::path& cwd = std::filesystem::current_path(),
                          const std::string& env = "") {
  const std::string cmd = "cd '" + cwd.string() + "' && " + env + " '" KEEL_BINARY "' " + args + " 2>&1";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

/// The `--nproc-per-node N` of a config's "# Launch:" line (configs for several ranks open with
/// `keel launch --nproc-per-node N -- keel train ...`); 1 when there is none.
inline int config_nproc(const std::string& yaml_text) {
  const auto launch = yaml_text.find("# Launch: keel launch");
  if (launch == std::string::npos) return 1;
  const auto eol = yaml_text.find('\n', launch);
  const std::string line = yaml_text.substr(launch, eol == std::string::npos ? std::string::npos : eol - launch);
  const std::string flag = "--nproc-per-node ";
  const auto at = line.find(flag);
  return at == std::string::npos ? 1 : std::stoi(line.substr(at + flag.size()));
}

/// The JSON objects of a JSONL text (blank lines skipped).
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

/// The JSON objects of a JSONL file (a run's metrics.jsonl).
inline std::vector<nlohmann::json> json_file_lines(const std::filesystem::path& file) {
  return json_lines(fs::read_file(file));
}

/// A fresh scratch directory under the system temp dir, removed on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("keel_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    keel::fs::remove_tree(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    keel::fs::remove_tree(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

/// Starts `keel train <config> run.output_dir=<out> run.total_steps=200` in `dir` (its output to
/// /dev/null: it cannot finish) and SIGKILLs it as soon as `marker` (a checkpoint's COMPLETE file)
/// exists, waiting at most 120 s. Returns whether the marker appeared and the run died by the signal.
inline bool train_until_then_kill(const std::filesystem::path& dir, const std::string& config, const std::string& out,
                                  const std::filesystem::path& marker) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    const std::string out_arg = "run.output_dir=" + out;
    execl(KEEL_BINARY, KEEL_BINARY, "train", config.c_str(), out_arg.c_str(), "run.total_steps=200", nullptr);
    _exit(127);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(marker) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return std::filesystem::exists(marker) && WIFSIGNALED(status);
}

}  // namespace keel::testing
