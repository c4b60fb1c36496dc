#include "trainer/checkpoint/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/build_info.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/node.h"

namespace keel::checkpoint {

namespace stdfs = std::filesystem;

namespace {

/// Keys (dotted prefixes) that must not change across a resume: the weights would not load or would
/// mean something else (model shape and source, tokenizer, template), the data cursor would point
/// into other data, or the optimizer and estimator state belong to another learner.
const std::vector<std::string> kResumeKeys = {
    "model.path", "model.tokenizer", "model.chat_template", "model.enable_thinking", "model.init", "data.task",
    "data.task_params", "data.prompt_key", "data.answer_key", "data.answer_extract", "data.answer_regex",
    "data.train_file", "data.format", "learner.algorithm", "critic.mode", "env.name", "env.params"};

void flatten(const config::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (n.is_map()) {
    for (const auto& [k, v] : n.entries()) flatten(v, path.empty() ? k : path + "." + k, out);
  } else if (n.is_seq()) {
    for (size_t i = 0; i < n.items().size(); ++i) flatten(n.items()[i], path + "." + std::to_string(i), out);
  } else {
    out[path] = n.is_null() ? "null" : n.text();
  }
}

bool watched(const std::string& key) {
  for (const auto& p : kResumeKeys)
    if (key == p || key.rfind(p + ".", 0) == 0) return true;
  return false;
}

}  // namespace

RunDirInfo prepare_run_dir(const std::filesystem::path& dir, const std::string& resolved_yaml,
                           const std::vector<std::string>& argv) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the run directory ({})", dir.string(), ec.message());
  fs::write_file_atomic(dir / "config.yaml", "# resolved config of this run (keel print-config)\n" + resolved_yaml);
  fs::write_file_atomic(dir / "git_revision", std::string(build_git_revision()) + "\n");
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  fs::write_file_atomic(dir / "command", cmd + "\n");
  return RunDirInfo{dir};
}

}  // namespace keel::checkpoint

namespace keel::checkpoint {

RunDirLock::RunDirLock(const stdfs::path& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the run directory ({})", dir.string(), ec.message());
  const auto file = dir / ".lock";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot open the run directory's lock file ({})", file.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::string holder;
    char buf[64] = {};
    if (::pread(fd_, buf, sizeof(buf) - 1, 0) > 0) holder = buf;
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK)
      fail("{}: the run directory is in use by another keel train ({}); two jobs in one run directory would mix "
           "their checkpoints and metrics: wait for it, stop it, or choose another run.name / run.output_dir",
           dir.string(), holder.empty() ? "pid unknown" : "pid " + holder);
    fail("{}: cannot lock ({})", file.string(), std::strerror(e));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) [[maybe_unused]] auto n = ::pwrite(fd_, pid.data(), pid.size(), 0);
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

void prepare_fresh_run(const stdfs::path& dir, const std::vector<stdfs::path>& checkpoints, bool overwrite) {
  if (checkpoints.empty()) return;
  if (!overwrite)
    fail("{} holds {} checkpoint(s) of an earlier run (newest: {}); a fresh run (run.resume none) would overwrite "
         "its metrics and later mix with its checkpoints: resume it with run.resume=auto, choose another run.name / "
         "run.output_dir, or set run.overwrite=true to delete them",
         dir.string(), checkpoints.size(), checkpoints.back().filename().string());
  log::warn("run.overwrite: removing the earlier run's {} checkpoint(s), metrics.jsonl and tensorboard/ in {}",
            checkpoints.size(), dir.string());
  fs::remove_tree(dir / "checkpoints");
  fs::remove_tree(dir / "tensorboard");
  std::error_code ec;
  stdfs::remove(dir / "metrics.jsonl", ec);
}

std::vector<std::string> resume_mismatches(const std::string& saved_yaml, const std::string& current_yaml) {
  std::map<std::string, std::string> a, b;
  flatten(config::parse_yaml_string(saved_yaml, "checkpoint config"), "", a);
  flatten(config::parse_yaml_string(current_yaml, "current config"), "", b);
  std::vector<std::string> out;
  for (const auto& [k, v] : a)
    if (watched(k)) {
      const auto it = b.find(k);
      const std::string now = it == b.end() ? "(absent)" : it->second;
      if (now != v) out.push_back(fmt::format("{}: {} -> {}", k, v, now));
    }
  for (const auto& [k, v] : b)
    if (watched(k) && !a.count(k)) out.push_back(fmt::format("{}: (absent) -> {}", k, v));
  return out;
}

void check_resume_matches(const stdfs::path& dir, const std::string& current_yaml) {
  const auto file = dir / kCheckpointConfig;
  std::error_code ec;
  if (!stdfs::exists(file, ec)) return;
  const auto diff = resume_mismatches(fs::read_file(file, "checkpoint config"), current_yaml);
  if (diff.empty()) return;
  std::string lines;
  for (const auto& d : diff) lines += "\n  " + d;
  fail("run.resume: checkpoint {} was written for another model, data or learner; these keys differ "
       "(checkpoint -> this config):{}\nto train on from its weights with this config, start a fresh run with "
       "model.path={}",
       dir.string(), lines, (dir / "policy").string());
}

}  // namespace keel::checkpoint
