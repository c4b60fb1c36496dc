// The launcher of launch.h: fork/exec of the ranks, a poll() loop that splits their output into
// prefixed lines and log files, reaps them, forwards signals and takes the job down on failure.
// POSIX / Linux only (prctl PDEATHSIG so that ranks die with a SIGKILLed launcher).
#include "trainer/dist/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "base/error.h"

extern char** environ;

namespace keel::dist {

namespace {

using Clock = std::chrono::steady_clock;

// The write end of the self-pipe that the signal handler writes the signal number into.
volatile sig_atomic_t g_signal_fd = -1;

void on_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  if (g_signal_fd >= 0) {
    const ssize_t n = ::write(g_signal_fd, &b, 1);
    (void)n;
  }
  errno = saved;
}

/// The program file a rank execs: a bare `keel` is the running keel (/proc/self/exe), so that the
/// README's `keel launch -- keel train ...` works without keel on PATH and runs the launcher's own
/// build; any other command is looked up on PATH as given.
std::string program_file(const std::string& command) {
  if (command != "keel") return command;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? command : self.string();
}

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to write (closed terminal): drop, never block the job on it
    done += static_cast<size_t>(n);
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return fmt::format("was killed by signal {} ({})", sig, name != nullptr ? name : "unknown");
  }
  return fmt::format("ended with wait status {}", status);
}

// One output stream of one rank: the pipe's read end and the partial line read so far.
struct Stream {
  int fd = -1;
  bool is_err = false;
  std::string partial;
};

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  bool alive = false;
  int status = 0;
  int stopped_by = 0;      ///< the signal that stopped it (SIGSTOP, SIGTSTP, ...), 0 while it runs
  int was_stopped_by = 0;  ///< the same, kept after the launcher continued it to take it down
  int log_fd = -1;
  Stream out, err;
};

class Launcher {
 public:
  explicit Launcher(const LaunchOptions& o) : o_(o) {}

  int run() {
    validate();
    std::error_code ec;
    std::filesystem::create_directories(o_.log_dir, ec);
    if (ec) fail("launch: cannot create the log directory '{}': {}", o_.log_dir, ec.message());
    install_signal_handlers();
    int rc = 0;
    try {
      spawn_all();
      rc = loop();
    } catch (...) {
      kill_all(SIGKILL);
      reap_blocking();
      cleanup();
      throw;
    }
    cleanup();
    return rc;
  }

 private:
  void validate() const {
    if (o_.nproc_per_node < 1) fail("launch: --nproc-per-node must be >= 1, got {}", o_.nproc_per_node);
    if (o_.nnodes < 1) fail("launch: --nnodes must be >= 1, got {}", o_.nnodes);
    if (o_.node_rank < 0 || o_.node_rank >= o_.nnodes)
      fail("launch: --node-rank must be in [0, {}), got {}", o_.nnodes, o_.node_rank);
    if (o_.master_port < 1 || o_.master_port > 65535)
      fail("launch: --master-port must be in [1, 65535], got {}", o_.master_port);
    if (o_.master_addr.empty()) fail("launch: --master-addr is empty");
    if (o_.grace_s < 0) fail("launch: --grace-s must be >= 0, got {}", o_.grace_s);
    if (o_.command.empty()) fail("launch: no command given (usage: keel launch --nproc-per-node N -- <command...>)");
  }

  void install_signal_handlers() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) fail("launch: pipe: {}", std::strerror(errno));
    sig_read_ = p[0];
    sig_write_ = p[1];
    g_signal_fd = sig_write_;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    handlers_installed_ = true;
  }

  void cleanup() {
    if (handlers_installed_) {
      ::sigaction(SIGINT, &old_int_, nullptr);
      ::sigaction(SIGTERM, &old_term_, nullptr);
      handlers_installed_ = false;
    }
    g_signal_fd = -1;
    for (int* fd : {&sig_read_, &sig_write_})
      if (*fd >= 0) ::close(*fd), *fd = -1;
    for (auto& r : ranks_) {
      for (Stream* s : {&r.out, &r.err}) {
        if (!s->partial.empty()) emit_line(r, *s, s->partial);
        s->partial.clear();
        if (s->fd >= 0) ::close(s->fd), s->fd = -1;
      }
      if (r.log_fd >= 0) ::close(r.log_fd), r.log_fd = -1;
    }
  }

  // The environment of local rank `local`: ours, with the torchrun variables and opt.env on top.
  std::vector<std::string> rank_env(int local) const {
    std::map<std::string, std::string> vars;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string kv = *e;
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    vars.try_emplace("OMP_NUM_THREADS", "1");  // unless already set
    vars["RANK"] = std::to_string(o_.node_rank * o_.nproc_per_node + local);
    vars["WORLD_SIZE"] = std::to_string(o_.nnodes * o_.nproc_per_node);
    vars["LOCAL_RANK"] = std::to_string(local);
    vars["LOCAL_WORLD_SIZE"] = std::to_string(o_.nproc_per_node);
    vars["GROUP_RANK"] = std::to_string(o_.node_rank);
    vars["GROUP_WORLD_SIZE"] = std::to_string(o_.nnodes);
    vars["MASTER_ADDR"] = o_.master_addr;
    vars["MASTER_PORT"] = std::to_string(o_.master_port);
    for (const auto& [k, v] : o_.env) vars[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
    return out;
  }

  void spawn_all() {
    ranks_.resize(o_.nproc_per_node);
    for (int local = 0; local < o_.nproc_per_node; ++local) {
      Rank& r = ranks_[local];
      r.rank = o_.node_rank * o_.nproc_per_node + local;
      const std::string log_path = (std::filesystem::path(o_.log_dir) / fmt::format("rank_{}.log", r.rank)).string();
      r.log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (r.log_fd < 0) fail("launch: cannot write the log file '{}': {}", log_path, std::strerror(errno));
      spawn(r, local);
    }
  }

  void spawn(Rank& r, int local) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) fail("launch: pipe: {}", std::strerror(errno));
    // Everything the child needs is built before fork(): after it only async-signal-safe calls.
    const auto env = rank_env(local);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::vector<char*> argv;
    for (const auto& a : o_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string program = program_file(o_.command[0]);
    const std::string exec_error = fmt::format("keel launch: cannot run '{}': ", program);
    const pid_t parent = ::getpid();

    // SIGINT/SIGTERM stay blocked across fork() until the child has the default handlers back:
    // our handler running in the child would report the signal to *this* launcher's pipe.
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    const pid_t pid = ::fork();
    if (pid == 0) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(SIGINT, &dfl, nullptr);
      ::sigaction(SIGTERM, &dfl, nullptr);
      ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(125);  // the launcher died before prctl took effect
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::execvpe(program.c_str(), argv.data(), envp.data());
      const int e = errno;
      [[maybe_unused]] auto n1 = ::write(STDERR_FILENO, exec_error.data(), exec_error.size());
      const char* msg = ::strerror(e);
      [[maybe_unused]] auto n2 = ::write(STDERR_FILENO, msg, std::strlen(msg));
      [[maybe_unused]] auto n3 = ::write(STDERR_FILENO, "\n", 1);
      ::_exit(127);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (pid < 0) fail("launch: fork: {}", std::strerror(errno));
    ::setpgid(pid, pid);  // also here, so that kill(-pid) works even before the child ran
    ::close(out[1]);
    ::close(err[1]);
    r.pid = pid;
    r.alive = true;
    r.out = Stream{out[0], false, {}};
    r.err = Stream{err[0], true, {}};
  }

  void emit_line(const Rank& r, const Stream& s, const std::string& line) {
    write_all(s.is_err ? o_.err_fd : o_.out_fd, fmt::format("[rank {}] {}\n", r.rank, line));
    write_all(r.log_fd, line + "\n");
  }

  void message(const std::string& m) { write_all(o_.err_fd, "keel launch: " + m + "\n"); }

  // Reads what is available; false at end of stream (the fd is closed then).
  void drain(Rank& r, Stream& s) {
    char buf[65536];
    const ssize_t n = ::read(s.fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      if (!s.partial.empty()) emit_line(r, s, s.partial);
      s.partial.clear();
      ::close(s.fd);
      s.fd = -1;
      return;
    }
    s.partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1)
      emit_line(r, s, s.partial.substr(start, nl - start));
    s.partial.erase(0, start);
  }

  void kill_all(int sig) {
    for (const auto& r : ranks_)
      if (r.alive) {
        ::kill(-r.pid, sig);
        if (r.stopped_by != 0) ::kill(-r.pid, SIGCONT);  // a stopped rank acts on the signal only once continued
      }
  }

  /// " (rank N, pid P, was stopped by signal S ...: the likely cause)" for each stopped rank, or "".
  std::string stopped_ranks_note() const {
    std::string note;
    for (const auto& r : ranks_)
      if (r.was_stopped_by != 0)
        note += fmt::format("; rank {} (pid {}) had been stopped by signal {} ({}) and stopped responding: the likely cause",
                            r.rank, r.pid, r.was_stopped_by, ::strsignal(r.was_stopped_by));
    return note;
  }

  void reap_blocking() {
    for (auto& r : ranks_)
      if (r.alive && ::waitpid(r.pid, &r.status, 0) == r.pid) r.alive = false;
  }

  void begin_shutdown(int sig) {
    if (shutting_down_) return;
    shutting_down_ = true;
    kill_all(sig);
    kill_at_ = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.grace_s * 1000));
  }

  int loop() {
    bool killed = false;
    std::optional<Clock::time_point> drain_until;
    for (;;) {
      std::vector<pollfd> fds{{sig_read_, POLLIN, 0}};
      std::vector<std::pair<Rank*, Stream*>> owners{{nullptr, nullptr}};
      for (auto& r : ranks_)
        for (Stream* s : {&r.out, &r.err})
          if (s->fd >= 0) {
            fds.push_back({s->fd, POLLIN, 0});
            owners.emplace_back(&r, s);
          }
      const int ready = ::poll(fds.data(), fds.size(), 50);
      if (ready < 0 && errno != EINTR) fail("launch: poll: {}", std::strerror(errno));
      if (ready > 0) {
        if (fds[0].revents & POLLIN) {
          unsigned char sig = 0;
          while (::read(sig_read_, &sig, 1) == 1) {
            kill_all(sig);
            if (interrupted_ == 0) {
              // The first: keel train ranks finish their step, checkpoint it and exit on their own
              // (a scheduler's preemption grace covers that), so no SIGKILL timer yet.
              interrupted_ = sig;
              message(fmt::format("received signal {} ({}), forwarded to the ranks; waiting for them to stop (a second "
                                  "signal stops them at once)", static_cast<int>(sig), ::strsignal(sig)));
            } else if (!shutting_down_) {
              message(fmt::format("received signal {} again: the ranks stop at once", static_cast<int>(sig)));
              begin_shutdown(sig);
            }
          }
        }
        for (size_t i = 1; i < fds.size(); ++i)
          if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) drain(*owners[i].first, *owners[i].second);
      }
      reap();
      const bool any_alive = std::any_of(ranks_.begin(), ranks_.end(), [](const Rank& r) { return r.alive; });
      if (shutting_down_ && any_alive && !killed && Clock::now() >= kill_at_) {
        message(fmt::format("ranks still running {} s after SIGTERM: sending SIGKILL", o_.grace_s));
        kill_all(SIGKILL);
        killed = true;
      }
      if (!any_alive) {
        const bool open = std::any_of(ranks_.begin(), ranks_.end(),
                                      [](const Rank& r) { return r.out.fd >= 0 || r.err.fd >= 0; });
        // A grandchild that left the process group may hold a pipe open: do not wait for it long.
        if (!drain_until) drain_until = Clock::now() + std::chrono::seconds(1);
        if (!open || Clock::now() >= *drain_until) break;
      }
    }
    if (interrupted_ != 0) return 128 + interrupted_;
    if (failed_ != nullptr) {
      message(fmt::format("failed: rank {} (local rank {}, pid {}) {}{}", failed_->rank, failed_->rank - first_rank(),
                          failed_->pid, describe_status(failed_->status), stopped_ranks_note()));
      return 1;
    }
    return 0;
  }

  int first_rank() const { return o_.node_rank * o_.nproc_per_node; }

  void reap() {
    for (auto& r : ranks_) {
      if (!r.alive) continue;
      int st = 0;
      const pid_t got = ::waitpid(r.pid, &st, WNOHANG | WUNTRACED | WCONTINUED);
      if (got != r.pid) continue;
      // A stopped rank (SIGSTOP, a debugger, a suspended terminal job) hangs the others until their
      // collectives time out, and they, not it, would fail first: say which one it is.
      if (WIFSTOPPED(st)) {
        r.stopped_by = r.was_stopped_by = WSTOPSIG(st);
        message(fmt::format("rank {} (pid {}) is stopped by signal {} ({}); the other ranks wait for it until "
                            "dist.timeout_s (SIGCONT {} resumes it)",
                            r.rank, r.pid, r.stopped_by, ::strsignal(r.stopped_by), r.pid));
        continue;
      }
      if (WIFCONTINUED(st)) {
        if (r.stopped_by != 0 && !shutting_down_) {
          message(fmt::format("rank {} (pid {}) continues", r.rank, r.pid));
          r.was_stopped_by = 0;
        }
        r.stopped_by = 0;
        continue;
      }
      r.status = st;
      r.alive = false;
      r.stopped_by = 0;
      const bool ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
      // While the ranks stop on a forwarded signal they exit non-zero (128 + the signal) on their own.
      if (!ok && failed_ == nullptr && !shutting_down_ && interrupted_ == 0) {
        failed_ = &r;
        message(fmt::format("rank {} (pid {}) {}; stopping the other ranks", r.rank, r.pid, describe_status(r.status)));
        begin_shutdown(SIGTERM);
      }
    }
  }

  const LaunchOptions& o_;
  std::vector<Rank> ranks_;
  int sig_read_ = -1, sig_write_ = -1;
  struct sigaction old_int_ {}, old_term_ {};
  bool handlers_installed_ = false;
  bool shutting_down_ = false;
  Clock::time_point kill_at_{};
  int interrupted_ = 0;
  const Rank* failed_ = nullptr;
};

}  // namespace

int run_launch(const LaunchOptions& opt) { return Launcher(opt).run(); }

}  // namespace keel::dist
