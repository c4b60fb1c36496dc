// `keel launch` (run_launch): the torchrun environment, "[rank N] " prefixes and per-rank logs, a
// failing rank taking the others down (SIGTERM, then SIGKILL), SIGTERM forwarding, and a real
// Gloo job started through it. The ranks are small sh scripts or this test binary itself.
#include "trainer/dist/launch.h"

#include <CLI/CLI.hpp>
#include <filesystem>

#include "tests/trainer/dist/dist_test_util.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::dist {
namespace {

namespace fs = std::filesystem;

// A fresh directory with out.txt / err.txt for the launcher's own output.
struct Scratch {
  Scratch() {
    char tmpl[] = "/tmp/keel_launch_XXXXXX";
    dir = ::mkdtemp(tmpl);
    out_fd = ::open((dir / "out.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    err_fd = ::open((dir / "err.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  ~Scratch() {
    ::close(out_fd);
    ::close(err_fd);
    std::error_code ec;
    keel::fs::remove_tree(dir, ec);
  }
  LaunchOptions options(int nproc, std::string script) const {
    LaunchOptions o;
    o.nproc_per_node = nproc;
    o.master_port = 29400;
    o.log_dir = (dir / "logs").string();
    o.command = {"/bin/sh", "-c", std::move(script)};
    o.out_fd = out_fd;
    o.err_fd = err_fd;
    return o;
  }
  std::string out() const { return testing::read_file((dir / "out.txt").string()); }
  std::string err() const { return testing::read_file((dir / "err.txt").string()); }
  std::string log(int rank) const { return testing::read_file((dir / "logs" / ("rank_" + std::to_string(rank) + ".log")).string()); }

  fs::path dir;
  int out_fd = -1, err_fd = -1;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(LaunchDist, EnvironmentPrefixesAndLogFiles) {
  Scratch s;
  auto o = s.options(2, "echo \"env $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $GROUP_RANK $MASTER_ADDR $MASTER_PORT $OMP_NUM_THREADS\"; "
                        "echo \"oops $RANK\" >&2; printf 'no newline %s' $RANK");
  o.nnodes = 2;
  o.node_rank = 1;  // this node runs global ranks 2 and 3
  o.master_addr = "10.1.2.3";
  ASSERT_EQ(run_launch(o), 0) << s.err();
  const std::string out = s.out(), err = s.err();
  EXPECT_TRUE(contains(out, "[rank 2] env 2 4 0 2 1 10.1.2.3 29400 1\n")) << out;
  EXPECT_TRUE(contains(out, "[rank 3] env 3 4 1 2 1 10.1.2.3 29400 1\n")) << out;
  EXPECT_TRUE(contains(out, "[rank 2] no newline 2\n")) << out;  // flushed at end of stream
  EXPECT_TRUE(contains(err, "[rank 3] oops 3\n")) << err;
  EXPECT_FALSE(contains(out, "oops")) << "stderr lines must stay on stderr: " << out;
  // Log files: both streams, unprefixed.
  for (int r : {2, 3}) {
    const std::string log = s.log(r);
    EXPECT_TRUE(contains(log, "env " + std::to_string(r) + " 4 ")) << log;
    EXPECT_TRUE(contains(log, "oops " + std::to_string(r) + "\n")) << log;
    EXPECT_TRUE(contains(log, "no newline " + std::to_string(r))) << log;
    EXPECT_FALSE(contains(log, "[rank")) << log;
  }
  EXPECT_FALSE(fs::exists(s.dir / "logs" / "rank_0.log"));
}

TEST(LaunchDist, OmpThreadsAndExtraEnvKeptWhenSet) {
  Scratch s;
  auto o = s.options(1, "echo \"$OMP_NUM_THREADS $KEEL_X\"");
  o.env = {{"OMP_NUM_THREADS", "3"}, {"KEEL_X", "y"}};
  ASSERT_EQ(run_launch(o), 0);
  EXPECT_TRUE(contains(s.out(), "[rank 0] 3 y\n")) << s.out();
}

TEST(LaunchDist, ManyLinesArriveWhole) {
  // 2 ranks x 2000 lines of 100 chars: no line is cut or merged with another rank's.
  Scratch s;
  auto o = s.options(2, "i=0; while [ $i -lt 2000 ]; do printf '%s %0100d\\n' $RANK $i; i=$((i+1)); done");
  ASSERT_EQ(run_launch(o), 0);
  std::istringstream in(s.out());
  int lines[2] = {0, 0};
  for (std::string line; std::getline(in, line);) {
    ASSERT_EQ(line.size(), 9u + 2 + 100) << line;
    const int r = line[6] - '0';
    ASSERT_EQ(line.substr(0, 9), "[rank " + std::to_string(r) + "] ") << line;
    ASSERT_EQ(line[9] - '0', r) << line;
    ++lines[r];
  }
  EXPECT_EQ(lines[0], 2000);
  EXPECT_EQ(lines[1], 2000);
}

TEST(LaunchDist, FailingRankStopsTheOthers) {
  Scratch s;
  auto o = s.options(3, "if [ \"$RANK\" = 1 ]; then sleep 0.2; exit 3; fi; exec sleep 60");
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_launch(o);
  const double took = seconds_since(t0);
  EXPECT_NE(rc, 0);
  EXPECT_LT(took, 10.0);
  const std::string err = s.err();
  EXPECT_TRUE(contains(err, "rank 1 (pid ")) << err;
  EXPECT_TRUE(contains(err, "exited with status 3; stopping the other ranks")) << err;
  EXPECT_TRUE(contains(err, "failed: rank 1 (local rank 1, pid ")) << err;
}

TEST(LaunchDist, RanksIgnoringSigtermAreKilled) {
  // Rank 0 dies by a signal; ranks 1, 2 ignore SIGTERM, so SIGKILL follows after the 0.5 s grace.
  Scratch s;
  auto o = s.options(3, "if [ \"$RANK\" = 0 ]; then sleep 0.2; kill -9 $$; fi; trap '' TERM; sleep 60");
  o.grace_s = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_launch(o);
  const double took = seconds_since(t0);
  EXPECT_EQ(rc, 1);
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 10.0);
  const std::string err = s.err();
  EXPECT_TRUE(contains(err, "rank 0 (pid ")) << err;
  EXPECT_TRUE(contains(err, "was killed by signal 9")) << err;
  EXPECT_TRUE(contains(err, "sending SIGKILL")) << err;
}

// A stopped rank hangs the others until they time out and fail; the launcher names the stopped one
// as it stops and again as the likely cause when another rank fails, and still takes it down.
TEST(LaunchDist, AStoppedRankIsNamed) {
  Scratch s;
  auto o = s.options(2, "if [ \"$RANK\" = 1 ]; then kill -STOP $$; sleep 60; fi; sleep 1; exit 5");
  o.grace_s = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_launch(o);
  EXPECT_EQ(rc, 1);
  EXPECT_LT(seconds_since(t0), 10.0);
  const std::string err = s.err();
  EXPECT_TRUE(contains(err, "rank 1 (pid ")) << err;
  EXPECT_TRUE(contains(err, "is stopped by signal 19 (Stopped (signal))")) << err;
  EXPECT_TRUE(contains(err, "failed: rank 0 (local rank 0, pid ")) << err;
  EXPECT_TRUE(contains(err, "had been stopped by signal 19 (Stopped (signal)) and stopped responding: the likely cause"))
      << err;
}

TEST(LaunchDist, CommandThatCannotRun) {
  Scratch s;
  auto o = s.options(2, "");
  o.command = {"/nonexistent/keel-no-such-program"};
  EXPECT_EQ(run_launch(o), 1);
  EXPECT_TRUE(contains(s.err(), "cannot run '/nonexistent/keel-no-such-program'")) << s.err();
  EXPECT_TRUE(contains(s.err(), "exited with status 127")) << s.err();
}

TEST(LaunchDist, RejectsBadOptions) {
  Scratch s;
  auto o = s.options(0, "true");
  EXPECT_THROW(run_launch(o), keel::Error);
  o = s.options(1, "true");
  o.node_rank = 1;
  EXPECT_THROW(run_launch(o), keel::Error);
  o = s.options(1, "true");
  o.command.clear();
  EXPECT_THROW(run_launch(o), keel::Error);
  o = s.options(1, "true");
  o.master_port = 0;
  EXPECT_THROW(run_launch(o), keel::Error);
}

// Runs run_launch in its own process (so that the test can signal it): the ranks trap SIGTERM
// and SIGINT, print "got TERM" / "got INT" and exit 0; the launcher must return 128 + the signal
// given in KEEL_TEST_SIGNAL.
TEST(LaunchDist, WorkerSignalledLauncher) {
  KEEL_DIST_WORKER_OR_SKIP();
  LaunchOptions o;
  o.nproc_per_node = 2;
  o.log_dir = std::getenv("KEEL_TEST_LOG_DIR");
  o.command = {"/bin/sh", "-c",
               "trap 'echo got TERM; exit 0' TERM; trap 'echo got INT; exit 0' INT; echo ready; "
               "while :; do sleep 0.05; done"};
  EXPECT_EQ(run_launch(o), 128 + std::atoi(std::getenv("KEEL_TEST_SIGNAL")));
}

// Starts WorkerSignalledLauncher, waits for both ranks, sends `sig` to the launcher only, and
// checks that both ranks got it and the launcher ended within 10 s.
void expect_forwarded(int sig, const std::string& name) {
  Scratch s;
  const std::string logs = (s.dir / "logs").string();
  // One "rank" of the spawner: the launcher process.
  const std::string exe = testing::self_exe();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("KEEL_DIST_TEST_WORKER", "1", 1);
    ::setenv("RANK", "0", 1);
    ::setenv("KEEL_TEST_LOG_DIR", logs.c_str(), 1);
    ::setenv("KEEL_TEST_SIGNAL", std::to_string(sig).c_str(), 1);
    ::dup2(s.out_fd, 1);
    ::dup2(s.err_fd, 2);
    ::execl(exe.c_str(), exe.c_str(), "--gtest_filter=LaunchDist.WorkerSignalledLauncher", nullptr);
    ::_exit(127);
  }
  // Wait until both ranks are up, then SIGTERM the launcher only.
  const auto t0 = std::chrono::steady_clock::now();
  while (seconds_since(t0) < 20 && !(contains(s.log(0), "ready") && contains(s.log(1), "ready")))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(contains(s.log(0), "ready") && contains(s.log(1), "ready")) << s.err();
  ::kill(pid, sig);
  int status = 0;
  const auto t1 = std::chrono::steady_clock::now();
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (seconds_since(t1) > 10) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL() << "the launcher did not stop within 10 s of " << name;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << s.out() << s.err();
  EXPECT_TRUE(contains(s.out(), "[  PASSED  ] 1 test")) << s.out();
  EXPECT_TRUE(contains(s.log(0), "got " + name)) << s.log(0);
  EXPECT_TRUE(contains(s.log(1), "got " + name)) << s.log(1);
  EXPECT_TRUE(contains(s.err(), "received signal " + std::to_string(sig))) << s.err();
}

TEST(LaunchDist, ForwardsSigterm) { expect_forwarded(SIGTERM, "TERM"); }

TEST(LaunchDist, ForwardsSigint) { expect_forwarded(SIGINT, "INT"); }

TEST(LaunchDist, RunsAGlooJob) {
  // The launcher's environment is enough for init_communicator: the collectives worker passes.
  Scratch s;
  auto o = s.options(2, "");
  o.command = {testing::self_exe(), "--gtest_filter=CollectivesDist.Worker"};
  o.env = {{"KEEL_DIST_TEST_WORKER", "1"}};
  o.master_port = testing::free_port();
  ASSERT_EQ(run_launch(o), 0) << s.out() << s.err();
  EXPECT_TRUE(contains(s.out(), "[rank 0] [  PASSED  ] 1 test")) << s.out();
  EXPECT_TRUE(contains(s.out(), "[rank 1] [  PASSED  ] 1 test")) << s.out();
}

TEST(LaunchCli, ParsesOptionsAndCommand) {
  CLI::App app;
  LaunchOptions o;
  auto* sub = add_launch_command(app, o);
  std::vector<std::string> args{"launch", "--nproc-per-node", "4", "--nnodes", "2", "--node-rank", "1",
                                "--master-addr", "h0", "--master-port", "1234", "--log-dir", "L", "--",
                                "keel", "train", "c.yaml", "--world-size", "8"};
  std::vector<const char*> argv{"keel"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  EXPECT_TRUE(*sub);
  EXPECT_EQ(o.nproc_per_node, 4);
  EXPECT_EQ(o.nnodes, 2);
  EXPECT_EQ(o.node_rank, 1);
  EXPECT_EQ(o.master_addr, "h0");
  EXPECT_EQ(o.master_port, 1234);
  EXPECT_EQ(o.log_dir, "L");
  EXPECT_EQ(o.command, (std::vector<std::string>{"keel", "train", "c.yaml", "--world-size", "8"}));
}

}  // namespace
}  // namespace keel::dist
