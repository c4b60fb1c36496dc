// Environment "subprocess": the client side of the JSON-lines protocol in docs/environments.md.
// SubprocessClient owns the child (posix_spawn, two pipes, its own process group) and sends one
// request at a time under a mutex, reading the answer with a poll() deadline; SubprocessEnv is one
// episode on it. Every child failure (timeout, EOF, write error, malformed line) kills the child's
// process group and bumps a generation number: episodes begun on an older generation are failed
// when they next talk to it, and the next reset() starts a fresh child.
// Deliberately not here: retries of a failed request (the episode is lost; the rollout decides
// what a failed episode is worth) and any parsing of the environment's observations.
#include "trainer/env/subprocess_env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "base/reader.h"

extern char** environ;

namespace keel::env {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr size_t kMaxLineBytes = size_t{64} << 20;  // a longer answer line is a failure
constexpr int kMaxFailedStarts = 3;                 // fresh children in a row that never said hello

/// Serialises for the pipe; invalid UTF-8 in model text is replaced, never thrown on.
std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

/// What a log line shows of an answer line: at most 300 bytes.
std::string shown(const std::string& line) {
  return line.size() <= 300 ? line : line.substr(0, 300) + fmt::format("... ({} bytes)", line.size());
}

/// The command line for messages: python3 -c "import sys" (arguments with spaces or quotes as JSON).
std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    const bool plain = !a.empty() && a.find_first_of(" \t\n\"'\\") == std::string::npos;
    s += (s.empty() ? "" : " ") + (plain ? a : json(a).dump());
  }
  return s;
}

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

/// Finds command[0] the way the child will run it: a name with '/' is a path (relative to `cwd`
/// when set), a bare name is looked up on PATH. Returns "" and the absolute path, or the problem.
std::string resolve_command(const std::string& name, const std::string& cwd, std::string& path) {
  if (name.empty()) return "command[0] is empty";
  std::error_code ec;
  if (name.find('/') != std::string::npos) {
    fs::path p(name);
    if (p.is_relative()) p = (fs::absolute(cwd.empty() ? fs::path(".") : fs::path(cwd), ec) / p).lexically_normal();
    if (!is_executable_file(p)) return fmt::format("'{}' is not an executable file (looked at {})", name, p.string());
    path = p.string();
    return "";
  }
  const char* env_path = std::getenv("PATH");
  const std::string dirs = env_path ? env_path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    const fs::path p = fs::absolute(fs::path(dir.empty() ? "." : dir) / name, ec);
    if (!ec && is_executable_file(p)) {
      path = p.string();
      return "";
    }
    start = end + 1;
  }
  return fmt::format("'{}' not found on PATH (give its path, or install it)", name);
}

/// Blocks SIGPIPE in this thread while writing to a pipe whose reader may be gone, so a dead child
/// gives EPIPE instead of killing keel; a SIGPIPE raised meanwhile is consumed before unblocking.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left + 1, 1 << 30));
}

std::string seconds_text(double s) { return fmt::format("{:g} s", s); }

/// "" when `j` is an object whose `key` (if present) satisfies `ok`, else the problem.
std::string check_optional(const json& j, const char* key, bool (*ok)(const json&), const char* what) {
  auto it = j.find(key);
  if (it == j.end() || ok(*it)) return "";
  return fmt::format("\"{}\" must be {}", key, what);
}

bool is_string(const json& j) { return j.is_string(); }
bool is_string_or_null(const json& j) { return j.is_string() || j.is_null(); }
bool is_number(const json& j) { return j.is_number(); }
bool is_bool(const json& j) { return j.is_boolean(); }
bool is_string_list(const json& j) {
  if (!j.is_array()) return false;
  for (const auto& x : j)
    if (!x.is_string()) return false;
  return true;
}
bool is_number_map(const json& j) {
  if (!j.is_object()) return false;
  for (const auto& [k, v] : j.items())
    if (!v.is_number() && !v.is_boolean()) return false;
  return true;
}

std::string check_any(const json&) { return ""; }
std::string check_reset(const json& j) { return check_optional(j, "observation", is_string, "a string"); }
std::string check_expert(const json& j) { return check_optional(j, "action", is_string_or_null, "a string or null"); }
std::string check_step(const json& j) {
  if (!j.contains("reward")) return "missing \"reward\"";
  if (!j.contains("done")) return "missing \"done\"";
  for (const std::string& p : {check_optional(j, "reward", is_number, "a number"),
                               check_optional(j, "done", is_bool, "true or false"),
                               check_optional(j, "observation", is_string, "a string"),
                               check_optional(j, "info", is_number_map, "an object of numbers")})
    if (!p.empty()) return p;
  return "";
}
std::string check_hello(const json& j) {
  if (j.contains("error")) return "";  // a program without hello: info_keys come from the YAML
  return check_optional(j, "info_keys", is_string_list, "a list of strings");
}

json record_json(const data::PromptRecord& rec) {
  json messages = json::array();
  for (const auto& m : rec.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  json meta = json::object();
  for (const auto& [k, v] : rec.meta) {
    json parsed = json::parse(v, nullptr, /*allow_exceptions=*/false);
    meta[k] = parsed.is_discarded() ? json(v) : std::move(parsed);
  }
  return {{"id", rec.id}, {"prompt", rec.prompt}, {"messages", std::move(messages)},
          {"answer", rec.answer}, {"meta", std::move(meta)}};
}

}  // namespace

// ---- the child process -------------------------------------------------------------------------

/// One child process shared by a factory's episodes. Every public member is thread-safe.
class SubprocessClient {
 public:
  enum class Outcome { kOk, kEnvError, kFailed };
  using Check = std::string (*)(const json&);

  explicit SubprocessClient(SubprocessOptions o) : o_(std::move(o)), name_(joined(o_.command)) {}
  ~SubprocessClient() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!child_) return;
    ::close(child_->in_fd);  // EOF on its stdin: a well-behaved program exits now
    child_->in_fd = -1;
    const bool exited = !exit_text(std::chrono::seconds(1)).empty();
    kill_locked("still running 1 s after its stdin was closed", /*warn=*/!exited);  // and its group
  }

  /// Sends `request` and reads its answer. With `start`, a child is started when none runs and
  /// `generation` receives its number; otherwise the request fails unless the child of
  /// `generation` still runs. kFailed: `why` says what happened (the child was killed when it
  /// misbehaved). kEnvError: the program answered {"error": ...}; `why` holds it.
  Outcome request(uint64_t& generation, bool start, const json& request, Check check, json& reply, std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (start) {
      if (!ensure_child_locked(why)) return Outcome::kFailed;
      generation = generation_;
    } else if (!child_ || generation != generation_) {
      why = "its environment process failed and was replaced";
      return Outcome::kFailed;
    }
    if (!exchange_locked(request, check, o_.timeout_s, reply, why)) return Outcome::kFailed;
    if (reply.contains("error")) {
      why = reply["error"].is_string() ? reply["error"].get<std::string>() : reply["error"].dump();
      return Outcome::kEnvError;
    }
    return Outcome::kOk;
  }

  /// The info keys of the YAML or the hello answer (starting the child if needed), then env_failed.
  std::vector<std::string> info_keys() {
    std::lock_guard<std::mutex> lock(mu_);
    if (o_.info_keys.empty() && !hello_keys_) {
      std::string why;
      if (!ensure_child_locked(why)) fail("environment '{}': cannot read its info_keys: {}", name_, why);
    }
    return with_env_failed(o_.info_keys.empty() && hello_keys_ ? *hello_keys_ : o_.info_keys);
  }

  /// The info keys known without starting anything (for the info of a failed step).
  std::vector<std::string> known_info_keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return with_env_failed(o_.info_keys.empty() && hello_keys_ ? *hello_keys_ : o_.info_keys);
  }

  std::string next_episode_id() { return std::to_string(next_episode_++); }
  void count_failure() { ++failures_; }
  const SubprocessOptions& options() const { return o_; }
  const std::string& name() const { return name_; }

  std::atomic<int64_t> restarts_{0};
  std::atomic<int64_t> failures_{0};

 private:
  struct Child {
    pid_t pid = -1;
    int in_fd = -1;   // write end of its stdin
    int out_fd = -1;  // read end of its stdout
    std::string buffer;  // bytes read past the last answer line
  };

  static std::vector<std::string> with_env_failed(std::vector<std::string> keys) {
    if (std::find(keys.begin(), keys.end(), "env_failed") == keys.end()) keys.push_back("env_failed");
    return keys;
  }

  /// Starts a child and reads its hello when none runs. false (with `why`) when the fresh child
  /// failed before answering; throws keel::Error when the program cannot be run at all.
  bool ensure_child_locked(std::string& why) {
    if (child_) return true;
    spawn_locked();  // throws when posix_spawn fails
    if (spawned_ > 1) ++restarts_;
    json reply;
    if (exchange_locked({{"op", "hello"}, {"protocol", 1}}, check_hello, o_.start_timeout_s, reply, why)) {
      if (!hello_keys_ && reply.contains("info_keys")) hello_keys_ = reply["info_keys"].get<std::vector<std::string>>();
      answered_hello_ = true;
      failed_starts_ = 0;
      ++generation_;
      return true;
    }
    ++failed_starts_;
    if (!answered_hello_ || failed_starts_ >= kMaxFailedStarts)
      fail("environment '{}' did not start: {} ({} fresh process{} in a row; see its stderr {}; run the command "
           "by hand and send {{\"op\":\"hello\"}} to check it)",
           name_, why, failed_starts_, failed_starts_ == 1 ? "" : "es",
           o_.stderr_file.empty() ? "above" : "in " + o_.stderr_file);
    return false;
  }

  void spawn_locked() {
    if (o_.command.empty()) fail("environment 'subprocess': params.command is empty (expected the program's argv)");
    std::string exe;
    const std::string problem = resolve_command(o_.command.at(0), o_.cwd, exe);
    if (!problem.empty()) fail("environment command '{}' cannot start: {}", name_, problem);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) fail("environment '{}': pipe: {}", name_, std::strerror(errno));
    if (::pipe2(out, O_CLOEXEC) != 0) {
      const int err = errno;
      ::close(in[0]);
      ::close(in[1]);
      fail("environment '{}': pipe: {}", name_, std::strerror(err));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);  // dup2 clears close-on-exec on 0 and 1
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (!o_.stderr_file.empty())
      posix_spawn_file_actions_addopen(&fa, 2, o_.stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!o_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o_.cwd.c_str());
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no fd of keel's (sockets, CUDA) leaks in
#endif
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, pipe_default;
    sigemptyset(&none);
    sigemptyset(&pipe_default);
    sigaddset(&pipe_default, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe_default);
    posix_spawnattr_setpgroup(&attr, 0);  // its own group: a kill reaches its children too
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv;
    for (const auto& a : o_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      ::close(in[1]);
      ::close(out[0]);
      fail("environment command '{}' cannot start: {} (program {}{}{})", name_, std::strerror(rc), exe,
           o_.cwd.empty() ? "" : ", cwd " + o_.cwd, o_.stderr_file.empty() ? "" : ", stderr_file " + o_.stderr_file);
    }
    ::fcntl(in[1], F_SETFL, ::fcntl(in[1], F_GETFL) | O_NONBLOCK);
    ::fcntl(out[0], F_SETFL, ::fcntl(out[0], F_GETFL) | O_NONBLOCK);
    child_ = Child{pid, in[1], out[0], {}};
    ++spawned_;
    log::debug("environment '{}': started pid {}", name_, pid);
  }

  /// Writes the request line and reads one answer line within `timeout_s`; on any failure the
  /// child is killed and false returned with `why`.
  bool exchange_locked(const json& request, Check check, double timeout_s, json& reply, std::string& why) {
    const std::string op = request.value("op", "?");
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
    std::string problem, line;
    const bool sent = write_all(dump_line(request), deadline, problem);
    if (!sent || !read_line(deadline, line, problem)) {
      if (problem == "timeout") why = fmt::format("no answer to '{}' within {}", op, seconds_text(timeout_s));
      else why = fmt::format("{} '{}': {}", sent ? "no answer to" : "cannot send", op, problem);
      kill_locked(why, /*warn=*/true);
      return false;
    }
    reply = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded()) problem = "not JSON";
    else if (!reply.is_object()) problem = "not a JSON object";
    else if (!reply.contains("error")) problem = check(reply);
    if (!problem.empty()) {
      why = fmt::format("malformed answer to '{}' ({}): {}", op, problem, shown(line));
      kill_locked(why, /*warn=*/true);
      return false;
    }
    return true;
  }

  bool write_all(const std::string& data, Clock::time_point deadline, std::string& problem) {
    SigpipeBlock block;
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(child_->in_fd, data.data() + done, data.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {  // its stdin pipe is full: it is not reading
        pollfd p{child_->in_fd, POLLOUT, 0};
        const int ms = ms_until(deadline);
        if (ms == 0 || (::poll(&p, 1, ms) == 0 && Clock::now() >= deadline)) {
          problem = "timeout";
          return false;
        }
      } else {
        problem = errno == EPIPE ? "it closed its stdin" + exit_text(std::chrono::milliseconds(200)) : std::string("write: ") + std::strerror(errno);
        return false;
      }
    }
    return true;
  }

  bool read_line(Clock::time_point deadline, std::string& line, std::string& problem) {
    std::string& buf = child_->buffer;
    for (;;) {
      const size_t nl = buf.find('\n');
      if (nl != std::string::npos) {
        line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are skipped
        return true;
      }
      if (buf.size() > kMaxLineBytes) {
        problem = fmt::format("an answer line longer than {} MiB", kMaxLineBytes >> 20);
        return false;
      }
      const int ms = ms_until(deadline);
      if (ms == 0) {
        problem = "timeout";
        return false;
      }
      pollfd p{child_->out_fd, POLLIN, 0};
      const int r = ::poll(&p, 1, ms);
      if (r < 0 && errno != EINTR) {
        problem = std::string("poll: ") + std::strerror(errno);
        return false;
      }
      if (r <= 0) continue;
      char chunk[65536];
      const ssize_t n = ::read(child_->out_fd, chunk, sizeof chunk);
      if (n > 0) {
        buf.append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        problem = "it closed its stdout" + exit_text(std::chrono::milliseconds(200));
        return false;
      } else if (errno != EINTR && errno != EAGAIN) {
        problem = std::string("read: ") + std::strerror(errno);
        return false;
      }
    }
  }

  /// " (it exited with status 3)" when the child exits within `wait`, else "". Leaves it unreaped
  /// (WNOWAIT), so its pid, which names its process group, stays reserved for kill_locked.
  std::string exit_text(Clock::duration wait) {
    const auto deadline = Clock::now() + wait;
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(child_->pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child_->pid) {
        if (info.si_code == CLD_EXITED) return fmt::format(" (it exited with status {})", info.si_status);
        return fmt::format(" (it was killed by signal {})", info.si_status);
      }
      if (Clock::now() >= deadline) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  /// Kills the child's process group, reaps it and closes the pipes; the next start is fresh.
  void kill_locked(const std::string& why, bool warn) {
    if (!child_) return;
    if (warn) log::warn("environment '{}' (pid {}): {}; killed it, the next episode starts a fresh process", name_, child_->pid, why);
    ::kill(-child_->pid, SIGKILL);  // the group: a shell's `sleep` dies with the shell
    ::kill(child_->pid, SIGKILL);
    while (::waitpid(child_->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (child_->in_fd >= 0) ::close(child_->in_fd);
    ::close(child_->out_fd);
    child_.reset();
  }

  const SubprocessOptions o_;
  const std::string name_;  // the command line, for messages
  std::mutex mu_;
  std::optional<Child> child_;
  uint64_t generation_ = 0;   // number of the child that answered hello last
  int64_t spawned_ = 0;
  int failed_starts_ = 0;     // fresh children in a row that failed before answering hello
  bool answered_hello_ = false;
  std::optional<std::vector<std::string>> hello_keys_;
  std::atomic<uint64_t> next_episode_{0};
};

// ---- one episode -------------------------------------------------------------------------------

namespace {

class SubprocessEnv : public Environment {
 public:
  explicit SubprocessEnv(std::shared_ptr<SubprocessClient> c) : c_(std::move(c)) {}
  ~SubprocessEnv() override { close(); }

  std::string reset(const data::PromptRecord& record, uint64_t seed) override {
    close();
    episode_ = c_->next_episode_id();
    state_ = State::kRunning;
    json reply;
    std::string why;
    const json req = {{"op", "reset"}, {"episode", episode_}, {"seed", seed}, {"record", record_json(record)}};
    const auto outcome = c_->request(generation_, /*start=*/true, req, check_reset, reply, why);
    if (outcome == SubprocessClient::Outcome::kEnvError) open_ = true;  // it may hold state: close it
    if (outcome != SubprocessClient::Outcome::kOk) {
      failed("reset", why, outcome);
      return "";
    }
    open_ = true;
    return reply.value("observation", "");
  }

  StepResult step(const std::string& action) override {
    try {
      return step_or_throw(action);
    } catch (const std::exception& e) {  // a bug here must not end the run: fail the episode
      log::error("environment '{}': episode {}: step failed in keel: {}", c_->name(), episode_, e.what());
      if (state_ != State::kFailed) failed("step", e.what(), SubprocessClient::Outcome::kFailed);
      return failed_result();
    }
  }

  std::optional<std::string> expert_action() const override {
    if (state_ != State::kRunning) return std::nullopt;
    json reply;
    std::string why;
    const json req = {{"op", "expert"}, {"episode", episode_}};
    const auto outcome = c_->request(generation_, /*start=*/false, req, check_expert, reply, why);
    if (outcome == SubprocessClient::Outcome::kEnvError) return std::nullopt;  // no expert here
    if (outcome != SubprocessClient::Outcome::kOk) {
      failed("expert", why, outcome);
      return std::nullopt;
    }
    auto it = reply.find("action");
    if (it == reply.end() || it->is_null()) return std::nullopt;
    return it->get<std::string>();
  }

 private:
  enum class State { kNew, kRunning, kDone, kFailed };

  StepResult step_or_throw(const std::string& action) {
    if (state_ == State::kFailed) return failed_result();
    if (state_ != State::kRunning) {
      if (state_ == State::kNew) log::error("environment '{}': step() before reset()", c_->name());
      return StepResult{"", 0.0, /*done=*/true, {{"env_failed", 0.0}}};
    }
    json reply;
    std::string why;
    const json req = {{"op", "step"}, {"episode", episode_}, {"action", action}};
    const auto outcome = c_->request(generation_, /*start=*/false, req, check_step, reply, why);
    if (outcome != SubprocessClient::Outcome::kOk) {
      failed("step", why, outcome);
      return failed_result();
    }
    StepResult r;
    r.observation = reply.value("observation", "");
    r.reward = reply["reward"].get<double>();
    r.done = reply["done"].get<bool>();
    if (auto it = reply.find("info"); it != reply.end())
      for (const auto& [k, v] : it->items()) r.info[k] = v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
    r.info["env_failed"] = 0.0;
    if (r.done) {
      state_ = State::kDone;
      close();
    }
    return r;
  }

  /// Ends the episode as failed (counted once); an {"error"} answer is logged here, the client
  /// has logged every other failure.
  void failed(const char* op, const std::string& why, SubprocessClient::Outcome outcome) const {
    if (outcome == SubprocessClient::Outcome::kEnvError)
      log::warn("environment '{}': episode {} failed: it answered '{}' with an error: {}", c_->name(), episode_, op, why);
    else
      log::debug("environment '{}': episode {} failed at '{}': {}", c_->name(), episode_, op, why);
    state_ = State::kFailed;
    c_->count_failure();
  }

  StepResult failed_result() const {
    StepResult r;
    r.done = true;
    for (const auto& k : c_->known_info_keys()) r.info[k] = 0.0;
    r.info["env_failed"] = 1.0;
    r.info["success"] = 0.0;
    return r;
  }

  /// Tells the program the episode is over (once); a failure here only affects the child.
  void close() {
    if (!open_) return;
    open_ = false;
    json reply;
    std::string why;
    c_->request(generation_, /*start=*/false, {{"op", "close"}, {"episode", episode_}}, check_any, reply, why);
  }

  std::shared_ptr<SubprocessClient> c_;
  std::string episode_;
  mutable uint64_t generation_ = 0;  // the child this episode lives on
  mutable State state_ = State::kNew;
  bool open_ = false;  // reset reached the program and close was not sent yet
};

}  // namespace

// ---- factory and registration -------------------------------------------------------------------

SubprocessEnvFactory::SubprocessEnvFactory(SubprocessOptions o)
    : client_(std::make_shared<SubprocessClient>(std::move(o))) {}

SubprocessEnvFactory::~SubprocessEnvFactory() = default;

std::unique_ptr<Environment> SubprocessEnvFactory::make() const { return std::make_unique<SubprocessEnv>(client_); }
std::vector<std::string> SubprocessEnvFactory::info_keys() const { return client_->info_keys(); }
std::vector<std::string> SubprocessEnvFactory::required_meta() const { return client_->options().required_meta; }
std::string SubprocessEnvFactory::task() const { return client_->options().task; }
int64_t SubprocessEnvFactory::restarts() const { return client_->restarts_.load(); }
int64_t SubprocessEnvFactory::failures() const { return client_->failures_.load(); }

void read(config::Reader& r, SubprocessOptions& o) {
  auto command = r.required("command", o.command, "argv of the environment program ([0] looked up on PATH)");
  if (command.present()) command.nonempty();
  r.field("cwd", o.cwd, "working directory of the program (\"\" = keel's)");
  r.field("timeout_s", o.timeout_s, "seconds to wait for each answer before killing and restarting the program").gt(0);
  r.field("start_timeout_s", o.start_timeout_s, "seconds a fresh program has to answer hello").gt(0);
  r.field("info_keys", o.info_keys, "info keys every step reports ([] = the program's hello answer)");
  r.field("required_meta", o.required_meta, "record meta fields the program reads");
  r.field("task", o.task, "built-in task whose records the program is made for (\"\" = any)");
  r.field("stderr_file", o.stderr_file, "append the program's stderr here (\"\" = keel's stderr)");
  std::error_code ec;
  const fs::path log_dir = fs::absolute(o.stderr_file, ec).parent_path();
  if (!o.stderr_file.empty() && !fs::is_directory(log_dir, ec))
    r.error("stderr_file", fmt::format("directory '{}' does not exist", log_dir.string()));
  if (!o.cwd.empty() && !fs::is_directory(o.cwd, ec)) {
    r.error("cwd", fmt::format("'{}' is not a directory", o.cwd));
  } else if (!o.command.empty()) {
    std::string path;
    const std::string problem = resolve_command(o.command[0], o.cwd, path);
    if (!problem.empty()) r.error("command", fmt::format("cannot run '{}': {}", joined(o.command), problem));
  }
}

std::map<std::string, double> SubprocessEnvFactory::metrics() const {
  return {{"restarts", static_cast<double>(restarts())}, {"failures", static_cast<double>(failures())}};
}

void register_subprocess(EnvRegistry& envs) {
  envs.add("subprocess", "an external program speaking JSON lines on stdin/stdout (docs/environments.md)",
           [](config::Reader& r) -> std::unique_ptr<EnvFactory> {
             SubprocessOptions o;
             read(r, o);
             return std::make_unique<SubprocessEnvFactory>(std::move(o));
           });
}

}  // namespace keel::env
