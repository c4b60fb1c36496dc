// Multi-process test support: a *Dist test re-executes this test binary (/proc/self/exe) N times
// with --gtest_filter=<a worker test> and the torchrun variables, waits with a timeout and
// collects each rank's exit status and output. Worker tests skip unless KEEL_DIST_TEST_WORKER is
// set, so in a normal run they are no-ops.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "trainer/dist/communicator.h"
#include "trainer/dist/rendezvous.h"

extern char** environ;

namespace keel::dist::testing {

/// Inside a worker test: skip unless spawned by a *Dist test.
#define KEEL_DIST_WORKER_OR_SKIP()                                                  \
  do {                                                                              \
    if (std::getenv("KEEL_DIST_TEST_WORKER") == nullptr || std::getenv("RANK") == nullptr) \
      GTEST_SKIP() << "worker of a *Dist test; runs only when spawned by one";      \
  } while (0)

/// Inside a worker: this rank's Gloo communicator, from the environment spawn_ranks set.
inline std::unique_ptr<Communicator> gloo_worker_comm(double timeout_s) {
  CommOptions o;
  o.backend = "gloo";
  o.timeout_s = timeout_s;
  return init_communicator(read_rendezvous_env(process_env()), o);
}

/// A TCP port that was free a moment ago (bind to port 0, read it back, close).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

inline std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/proc/self/exe");
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct SpawnSpec {
  std::string filter;                   ///< gtest filter of the worker test
  int world_size = 2;
  std::vector<int> ranks;               ///< ranks to start; empty = all
  std::map<std::string, std::string> env;  ///< extra variables
  double timeout_s = 60;                ///< then every child is SIGKILLed
};

struct RankRun {
  int rank = 0;
  int status = 0;                       ///< waitpid status
  bool timed_out = false;
  std::string output;                   ///< stdout + stderr
  bool ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

/// Starts the worker ranks, waits for them (at most timeout_s) and returns one RankRun per rank.
inline std::vector<RankRun> spawn_ranks(const SpawnSpec& spec) {
  std::vector<int> ranks = spec.ranks;
  if (ranks.empty())
    for (int r = 0; r < spec.world_size; ++r) ranks.push_back(r);
  const std::string exe = self_exe();
  const std::string filter = "--gtest_filter=" + spec.filter;
  const int port = free_port();
  std::vector<RankRun> runs(ranks.size());
  std::vector<pid_t> pids(ranks.size(), -1);
  std::vector<std::string> logs(ranks.size());
  for (size_t i = 0; i < ranks.size(); ++i) {
    runs[i].rank = ranks[i];
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    vars["KEEL_DIST_TEST_WORKER"] = "1";
    vars["RANK"] = std::to_string(ranks[i]);
    vars["WORLD_SIZE"] = std::to_string(spec.world_size);
    vars["LOCAL_RANK"] = std::to_string(ranks[i]);
    vars["LOCAL_WORLD_SIZE"] = std::to_string(spec.world_size);
    vars["MASTER_ADDR"] = "127.0.0.1";
    vars["MASTER_PORT"] = std::to_string(port);
    vars["OMP_NUM_THREADS"] = "1";
    for (const auto& [k, v] : spec.env) vars[k] = v;
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<char*> argv{const_cast<char*>(exe.c_str()), const_cast<char*>(filter.c_str()), nullptr};
    char tmpl[] = "/tmp/keel_dist_rank_XXXXXX";
    const int out = ::mkstemp(tmpl);
    logs[i] = tmpl;
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out);
    pids[i] = pid;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(spec.timeout_s * 1000));
  std::vector<bool> done(ranks.size(), false);
  for (size_t left = ranks.size(); left > 0;) {
    for (size_t i = 0; i < ranks.size(); ++i)
      if (!done[i] && ::waitpid(pids[i], &runs[i].status, WNOHANG) == pids[i]) done[i] = true, --left;
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < ranks.size(); ++i)
        if (!done[i]) {
          ::kill(pids[i], SIGKILL);
          ::waitpid(pids[i], &runs[i].status, 0);
          runs[i].timed_out = true;
          done[i] = true;
        }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    runs[i].output = read_file(logs[i]);
    ::unlink(logs[i].c_str());
  }
  return runs;
}

/// gtest assertion text for a set of runs: empty when every rank passed.
inline std::string failures(const std::vector<RankRun>& runs) {
  std::string msg;
  for (const auto& r : runs)
    if (!r.ok())
      msg += "rank " + std::to_string(r.rank) + (r.timed_out ? " timed out" : " failed (status " + std::to_string(r.status) + ")") +
             ", output:\n" + r.output + "\n";
  return msg;
}

/// The worker ran its test body (it did not skip).
inline bool ran_worker(const RankRun& r) { return r.output.find("[  PASSED  ] 1 test") != std::string::npos; }

}  // namespace keel::dist::testing
