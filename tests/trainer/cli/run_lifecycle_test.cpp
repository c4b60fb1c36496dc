// How a `keel train` run ends when the world interferes, through the real binary: SIGTERM / SIGINT
// finish the step, checkpoint it and exit 128 + signal (a second signal exits at once; under
// `keel launch` every rank stops after the same step, disaggregated roles included); a closed
// stdout does not kill training; the NaN rollback goes on with new batches and ends with the cause
// when it cannot recover; a damaged newest checkpoint is skipped on resume; one job per run
// directory, no silent overwrite of another run's checkpoints, no resume into another model.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <algorithm>
#include <cstdio>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "base/fs.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kTinyNoCheckpoint = kTinyArithmeticRun + R"(
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 2}
learner: {algorithm: grpo}
kl: {in_loss: true, coef: 0.01}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
)";
const std::string kTiny = kTinyNoCheckpoint + "checkpoint: {every: 2, keep_last: 3}\n";
/// Checkpoints only at the end (or when stopped).
const std::string kTinyEnd = kTinyNoCheckpoint + "checkpoint: {every: 100, keep_last: 2}\n";

/// `keel <args>` started in `dir` in the background (its own process group), output to `log`.
class Background {
 public:
  Background(const stdfs::path& dir, const std::vector<std::string>& args, const stdfs::path& log) : log_(log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      if (::chdir(dir.c_str()) != 0) ::_exit(127);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv{const_cast<char*>(KEEL_BINARY)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(KEEL_BINARY, argv.data());
      ::_exit(127);
    }
  }
  ~Background() {
    if (!done_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
    }
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  /// Waits at most `limit_s`; false when it is still running then.
  bool wait(double limit_s) {
    if (done_) return true;
    const auto t0 = Clock::now();
    while (::waitpid(pid_, &status_, WNOHANG) != pid_) {
      if (std::chrono::duration<double>(Clock::now() - t0).count() > limit_s) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    done_ = true;
    return true;
  }
  int status() const { return status_; }
  bool running() {
    if (!done_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) done_ = true;
    return !done_;
  }
  std::string output() const { return fs::read_file(log_); }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool done_ = false;
  stdfs::path log_;
};

/// Lines in `file` (0 when it does not exist).
size_t line_count(const stdfs::path& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

/// Waits until `pred` holds, at most `limit_s`, and not after `bg` ended.
bool wait_for(Background& bg, const std::function<bool()>& pred, double limit_s = 120) {
  const auto t0 = Clock::now();
  while (!pred()) {
    if (!bg.running()) return pred();
    if (std::chrono::duration<double>(Clock::now() - t0).count() > limit_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::vector<int64_t> steps_of(const stdfs::path& metrics) {
  std::vector<int64_t> out;
  for (const auto& j : json_file_lines(metrics)) out.push_back(j["step"].get<int64_t>());
  return out;
}

std::string ckpt(int64_t step) { return fmt::format("step-{:08d}", step); }

/// `keel launch` arguments running `keel train c.yaml <train_args>` on `nproc` ranks (logs in logs/).
std::vector<std::string> launch_train(int nproc, const std::vector<std::string>& train_args) {
  std::vector<std::string> a{"launch", "--nproc-per-node", std::to_string(nproc), "--grace-s", "0.5", "--master-port",
                             std::to_string(dist::testing::free_port()), "--log-dir", "logs", "--", KEEL_BINARY,
                             "train", "c.yaml"};
  a.insert(a.end(), train_args.begin(), train_args.end());
  return a;
}

// SIGTERM mid-run: the step in flight finishes, its checkpoint is written (0 steps lost), the exit
// status is 143; resuming from it equals the uninterrupted run.
TEST(RunLifecycleSlow, SigtermCheckpointsTheStepAndResumesExactly) {
  ScratchDir dir("sigterm");
  dir.write("c.yaml", kTinyEnd);
  const auto metrics = dir.path() / "stopped/tiny/metrics.jsonl";
  Background bg(dir.path(), {"train", "c.yaml", "run.output_dir=stopped", "run.total_steps=200"}, dir.path() / "bg.log");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(metrics) >= 2; })) << bg.output();
  bg.signal(SIGTERM);
  ASSERT_TRUE(bg.wait(60)) << "still running 60 s after SIGTERM\n" << bg.output();
  ASSERT_TRUE(WIFEXITED(bg.status()) && WEXITSTATUS(bg.status()) == 143) << bg.status() << "\n" << bg.output();
  const auto steps = steps_of(metrics);
  ASSERT_GE(steps.size(), 2u);
  const int64_t k = steps.back();
  EXPECT_NE(bg.output().find(fmt::format("stopped by signal 15 (Terminated) after step {}", k)), std::string::npos)
      << bg.output();
  EXPECT_TRUE(stdfs::exists(dir.path() / "stopped/tiny/checkpoints" / ckpt(k) / "COMPLETE")) << "step " << k << " lost";

  const std::string total = "run.total_steps=" + std::to_string(k + 2);
  auto r = run_keel("train c.yaml run.output_dir=straight " + total, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=stopped run.resume=auto " + total, dir.path());
  expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / "stopped/tiny", static_cast<size_t>(k + 2), 20,
                        ckpt(k + 2));
}

// A second signal does not wait for the step: the process dies by it at once.
TEST(RunLifecycleSlow, ASecondSignalStopsAtOnce) {
  ScratchDir dir("sigtwice");
  dir.write("c.yaml", kTiny);
  const auto metrics = dir.path() / "runs/tiny/metrics.jsonl";
  // Steps of 1 s (a test hook sleeps at the start of each): the second signal comes while the first
  // one's step still runs.
  ::setenv("KEEL_TEST_STEP_SLEEP_MS", "1000", 1);
  Background bg(dir.path(), {"train", "c.yaml", "run.total_steps=100000"}, dir.path() / "bg.log");
  ::unsetenv("KEEL_TEST_STEP_SLEEP_MS");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(metrics) >= 1; })) << bg.output();
  bg.signal(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  bg.signal(SIGINT);
  ASSERT_TRUE(bg.wait(20)) << bg.output();
  EXPECT_TRUE(WIFSIGNALED(bg.status()) && WTERMSIG(bg.status()) == SIGINT) << bg.status() << "\n" << bg.output();
  EXPECT_EQ(bg.output().find("stopped by signal"), std::string::npos) << bg.output();
}

// `keel train ... | head -c 1`: the reader goes away after one byte; training still finishes and
// saves (SIGPIPE is ignored; console lines are lost, files are not).
TEST(RunLifecycleSlow, AClosedStdoutDoesNotStopTraining) {
  ScratchDir dir("sigpipe");
  dir.write("c.yaml", kTiny);
  const std::string cmd = "cd '" + dir.path().string() + "' && ( '" KEEL_BINARY "' train c.yaml run.total_steps=4; echo $? > rc.txt ) | head -c 1 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(fs::read_file(dir.path() / "rc.txt"), "0\n");
  EXPECT_EQ(steps_of(dir.path() / "runs/tiny/metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(stdfs::exists(dir.path() / "runs/tiny/checkpoints" / ckpt(4) / "COMPLETE"));
}

// Non-finite steps from step 3 on, every time (no batch is good): two rollbacks, each going on with
// the next batches (no step appears twice in metrics.jsonl), then the run stops with the cause
// instead of looping.
TEST(RunLifecycleSlow, ARollbackLoopEndsWithTheCause) {
  ScratchDir dir("rollback_loop");
  dir.write("c.yaml", kTiny);
  const auto t0 = Clock::now();
  const auto r = run_keel("train c.yaml run.total_steps=20 optim.rollback_after=1 optim.max_rollbacks=2", dir.path(),
                          "KEEL_TEST_INJECT_NAN_STEP=3+");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 120);
  ASSERT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("rolled back to"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rollback 2 of at most 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("after 2 rollback(s) with no finite step since"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("optim.max_rollbacks 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loss nan"), std::string::npos) << r.out;
  const auto steps = steps_of(dir.path() / "runs/tiny/metrics.jsonl");
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4})) << "steps 3 and 4 rolled back, step 5 stopped the run";
}

// A damaged newest checkpoint (truncated optimizer state; garbage trainer state) is skipped with a
// warning naming the file, and the run resumes from the newest one that verifies; naming the
// damaged one explicitly is an error.
TEST(RunLifecycleSlow, ADamagedNewestCheckpointIsSkipped) {
  ScratchDir dir("corrupt");
  dir.write("c.yaml", kTiny);
  auto r = run_keel("train c.yaml run.total_steps=6", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto root = dir.path() / "runs/tiny/checkpoints";
  ASSERT_TRUE(stdfs::exists(root / ckpt(6) / "MANIFEST.json"));
  stdfs::resize_file(root / ckpt(6) / "optimizer.pt", stdfs::file_size(root / ckpt(6) / "optimizer.pt") / 2);
  fs::write_file_atomic(root / ckpt(4) / "trainer_state.json", "{\"step\": -5, \"garbage\": ");

  r = run_keel("train c.yaml run.resume=" + (root / ckpt(6)).string() + " run.total_steps=8", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("does not verify"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("optimizer.pt has"), std::string::npos) << r.out;

  r = run_keel("train c.yaml run.resume=auto run.total_steps=8", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string rel = "runs/tiny/checkpoints/";  // as the run names them (run.output_dir is relative)
  EXPECT_NE(r.out.find("skipping checkpoint " + rel + ckpt(6) + ": " + rel + ckpt(6) + "/optimizer.pt has"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipping checkpoint " + rel + ckpt(4) + ": " + rel + ckpt(4) + "/trainer_state.json"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resumed from " + rel + ckpt(2)), std::string::npos) << r.out;
  EXPECT_EQ(steps_of(dir.path() / "runs/tiny/metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// A fresh run does not replace another run's checkpoints unless told to; a resume refuses a
// checkpoint of another model shape, naming the key; a second job on a run directory in use is
// refused, naming the first one's pid.
TEST(RunLifecycleSlow, RunDirectoriesAreNotShared) {
  ScratchDir dir("rundir");
  dir.write("c.yaml", kTiny);
  auto r = run_keel("train c.yaml run.total_steps=2", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;

  r = run_keel("train c.yaml run.total_steps=2", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("holds 1 checkpoint(s) of an earlier run"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run.overwrite=true"), std::string::npos) << r.out;

  r = run_keel("train c.yaml run.resume=auto run.total_steps=3 model.init.hidden_size=64", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("model.init.hidden_size: 32 -> 64"), std::string::npos) << r.out;

  r = run_keel("train c.yaml run.total_steps=3 run.overwrite=true", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("run.overwrite: removing"), std::string::npos) << r.out;
  EXPECT_EQ(steps_of(dir.path() / "runs/tiny/metrics.jsonl"), (std::vector<int64_t>{1, 2, 3}));

  Background bg(dir.path(), {"train", "c.yaml", "run.resume=auto", "run.total_steps=100000"}, dir.path() / "bg.log");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(dir.path() / "runs/tiny/metrics.jsonl") >= 4; })) << bg.output();
  r = run_keel("train c.yaml run.resume=auto run.total_steps=100000", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("in use by another keel train (pid "), std::string::npos) << r.out;
}

// keel train-rm keeps the same run-directory rules: no fresh run over another run's checkpoints
// without run.overwrite, no resume into another model shape.
TEST(RunLifecycleSlow, TrainRmRunDirectoriesAreNotShared) {
  ScratchDir dir("rundir_rm");
  const std::string cfg = std::string(KEEL_SOURCE_DIR) + "/configs/learners/rm.yaml";
  const std::string base = "train-rm '" + cfg + "' data.train_file=" + KEEL_SOURCE_DIR +
                           "/configs/data/prefs_tiny.jsonl run.total_steps=2 eval.every=0 run.threads=1";
  auto r = run_keel(base, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel(base, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("holds 1 checkpoint(s) of an earlier run"), std::string::npos) << r.out;
  r = run_keel(base + " run.resume=auto run.total_steps=3 model.init.hidden_size=32 model.init.intermediate_size=88", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("model.init.hidden_size: 64 -> 32"), std::string::npos) << r.out;
  r = run_keel(base + " run.overwrite=true", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

// Under `keel launch`, SIGTERM to the launcher reaches every rank; they stop after the same step,
// rank 0 checkpoints it, the launcher waits for them (no SIGKILL) and exits 143, and the run resumes.
TEST(RunLifecycleDist, SigtermToTheLauncherStopsEveryRankAfterOneStep) {
  ScratchDir dir("sigterm_launch");
  dir.write("c.yaml", kTinyEnd);
  const auto metrics = dir.path() / "runs/tiny/metrics.jsonl";
  Background bg(dir.path(), launch_train(2, {"run.total_steps=100000", "batch.prompts_per_step=4"}),
                dir.path() / "bg.log");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(metrics) >= 2; })) << bg.output();
  bg.signal(SIGTERM);
  ASSERT_TRUE(bg.wait(60)) << bg.output();
  const auto out = bg.output();
  ASSERT_TRUE(WIFEXITED(bg.status()) && WEXITSTATUS(bg.status()) == 143) << bg.status() << "\n" << out;
  EXPECT_EQ(out.find("sending SIGKILL"), std::string::npos) << out;
  const int64_t k = steps_of(metrics).back();
  for (int rank = 0; rank < 2; ++rank)
    EXPECT_NE(fs::read_file(dir.path() / "logs" / fmt::format("rank_{}.log", rank))
                  .find(fmt::format("stopped by signal 15 (Terminated) after step {}", k)),
              std::string::npos)
        << "rank " << rank << "\n" << out;
  EXPECT_TRUE(stdfs::exists(dir.path() / "runs/tiny/checkpoints" / ckpt(k) / "COMPLETE")) << out;
  const auto r = run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) +
                              " --log-dir logs2 -- '" KEEL_BINARY "' train c.yaml run.resume=auto batch.prompts_per_step=4 "
                              "run.total_steps=" + std::to_string(k + 1),
                          dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  EXPECT_EQ(steps_of(metrics).back(), k + 1);
}

// Disaggregated (learner, rollout, reward ranks): the learners decide, checkpoint, and hand the
// stop to the rollout rank with the weight broadcast; it passes it to the reward rank; all exit 143.
TEST(RunLifecycleDist, SigtermStopsADisaggregatedJob) {
  ScratchDir dir("sigterm_disagg");
  dir.write("c.yaml", kTinyEnd);
  const auto metrics = dir.path() / "runs/tiny/metrics.jsonl";
  Background bg(dir.path(),
                launch_train(3, {"run.total_steps=100000", "dist.placement=disaggregated", "dist.learner_ranks=1",
                                 "dist.rollout_ranks=1", "dist.reward_ranks=1", "run.log_all_ranks=true"}),
                dir.path() / "bg.log");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(metrics) >= 2; })) << bg.output();
  bg.signal(SIGTERM);
  ASSERT_TRUE(bg.wait(60)) << bg.output();
  const auto out = bg.output();
  ASSERT_TRUE(WIFEXITED(bg.status()) && WEXITSTATUS(bg.status()) == 143) << bg.status() << "\n" << out;
  EXPECT_EQ(out.find("sending SIGKILL"), std::string::npos) << out;
  EXPECT_NE(out.find("rollout rank 0: stopped with the learners"), std::string::npos) << out;
  EXPECT_NE(out.find("reward rank 0: stopped with the learners"), std::string::npos) << out;
  const int64_t k = steps_of(metrics).back();
  EXPECT_TRUE(stdfs::exists(dir.path() / "runs/tiny/checkpoints" / ckpt(k) / "COMPLETE")) << out;
}

/// The pid of the child of `parent` whose environment holds RANK=<rank> (-1 when none).
pid_t child_with_rank(pid_t parent, int rank) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
  const std::string var = "RANK=" + std::to_string(rank);
  for (pid_t pid; in >> pid;) {
    // NUL-separated KEY=VALUE entries; "\0RANK=" so that LOCAL_RANK / GROUP_RANK do not match.
    const std::string env = std::string(1, '\0') + fs::read_file("/proc/" + std::to_string(pid) + "/environ");
    if (env.find(std::string(1, '\0') + var + std::string(1, '\0')) != std::string::npos) return pid;
  }
  return -1;
}

// A rank stopped by SIGSTOP mid-run: rank 0 times out in a collective after dist.timeout_s and
// fails first; its error names rank 1 from the heartbeats (silent), and the launcher names the
// stopped rank as the likely cause.
TEST(RunLifecycleDist, AStoppedRankIsNamedAsTheCause) {
  ScratchDir dir("sigstop");
  dir.write("c.yaml", kTinyEnd);
  const auto metrics = dir.path() / "runs/tiny/metrics.jsonl";
  Background bg(dir.path(), launch_train(2, {"run.total_steps=100000", "batch.prompts_per_step=4", "dist.timeout_s=5"}),
                dir.path() / "bg.log");
  ASSERT_TRUE(wait_for(bg, [&] { return line_count(metrics) >= 1; })) << bg.output();
  const pid_t rank1 = child_with_rank(bg.pid(), 1);
  ASSERT_GT(rank1, 0) << bg.output();
  ::kill(rank1, SIGSTOP);
  ASSERT_TRUE(bg.wait(60)) << bg.output();
  const auto out = bg.output();
  EXPECT_TRUE(WIFEXITED(bg.status()) && WEXITSTATUS(bg.status()) == 1) << bg.status() << "\n" << out;
  EXPECT_NE(out.find(fmt::format("rank 1 (pid {}) is stopped by signal 19", rank1)), std::string::npos) << out;
  EXPECT_NE(out.find(fmt::format("rank 1 (pid {}) had been stopped by signal 19 (Stopped (signal)) and stopped "
                                 "responding: the likely cause", rank1)),
            std::string::npos)
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\\[rank 0\\] .*failed on rank 0 of 2: .*; heartbeats: rank 1 silent for "
                                                "[0-9.]+ s \\(stopped, hung or gone; at step [0-9]+\\)")))
      << out;
}

// Fault injection over 50 runs (fixed seed): each run is started with run.resume=auto again and
// again until it finishes, and interrupted at random moments by SIGKILL or SIGTERM; after a third
// of the interruptions a file of the newest checkpoint is damaged (truncated, one byte inverted,
// deleted). Every run must finish, lose at most 1 step per kill and none per SIGTERM, never resume
// from a damaged checkpoint, and end with the metrics of the uninterrupted run.
TEST(RunLifecycleSlow, FaultInjectionTrials) {
  ScratchDir dir("faults");
  dir.write("c.yaml", kTinyNoCheckpoint + "checkpoint: {every: 1, keep_last: 2}\n");
  const int total = 24;
  const std::string steps_arg = "run.total_steps=" + std::to_string(total);
  auto r = run_keel("train c.yaml run.output_dir=straight " + steps_arg, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto straight = dir.path() / "straight/tiny";

  std::mt19937 rng(2026);
  int kills = 0, terms = 0, damages = 0, max_lost_kill = 0, max_lost_term = 0, starts = 0;
  for (int trial = 0; trial < 50; ++trial) {
    const std::string out = "t" + std::to_string(trial);
    const auto run_dir = dir.path() / out / "tiny";
    const auto newest = [&]() -> int64_t {  // the newest complete checkpoint's step (0: none)
      int64_t best = 0;
      std::error_code ec;
      if (stdfs::is_directory(run_dir / "checkpoints", ec))
        for (const auto& e : stdfs::directory_iterator(run_dir / "checkpoints"))
          if (stdfs::exists(e.path() / "COMPLETE") && e.path().filename().string().rfind("step-", 0) == 0)
            best = std::max<int64_t>(best, std::stoll(e.path().filename().string().substr(5)));
      return best;
    };
    const auto logged = [&]() -> int64_t {
      const auto s = stdfs::exists(run_dir / "metrics.jsonl") ? steps_of(run_dir / "metrics.jsonl") : std::vector<int64_t>{};
      return s.empty() ? 0 : s.back();
    };
    std::string damaged;  // the checkpoint damaged before this start ("" none)
    bool finished = false;
    for (int attempt = 0; attempt < 16 && !finished; ++attempt) {
      // After 8 interrupted starts the run is left alone: every run must be able to finish. So is
      // the start after a damage (a second damage could hit the only other checkpoint kept).
      const int fault = attempt >= 8 || !damaged.empty() ? 0 : static_cast<int>(rng() % 5);  // 0 none, 1-2 kill, 3-4 term
      const double delay_s = 0.1 + static_cast<double>(rng() % 1000) / 1000.0 * 0.5;
      ++starts;
      Background bg(dir.path(), {"train", "c.yaml", "run.output_dir=" + out, "run.resume=auto", steps_arg},
                    dir.path() / (out + ".log"));
      if (fault != 0) {
        wait_for(bg, [] { return false; }, delay_s);
        bg.signal(fault >= 3 ? SIGTERM : SIGKILL);
      }
      ASSERT_TRUE(bg.wait(120)) << bg.output();
      const auto text = bg.output();
      if (!damaged.empty()) {
        EXPECT_EQ(text.find("resumed from " + out + "/tiny/checkpoints/" + damaged), std::string::npos)
            << "trial " << trial << " resumed from the damaged checkpoint " << damaged << "\n" << text;
        EXPECT_NE(text.find("skipping checkpoint " + out + "/tiny/checkpoints/" + damaged), std::string::npos) << text;
      }
      damaged.clear();
      const int st = bg.status();
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        finished = true;
        break;
      }
      const int64_t lost = logged() - newest();
      if (fault >= 3) {
        // Before keel installs its handler (loading libraries) SIGTERM kills at once; nothing was
        // trained then.
        const bool early = WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && text.find("step 1/") == std::string::npos;
        EXPECT_TRUE(early || (WIFEXITED(st) && WEXITSTATUS(st) == 143)) << st << "\n" << text;
        ++terms;
        if (!early) {  // else metrics and checkpoints are still the earlier start's
          max_lost_term = std::max<int>(max_lost_term, static_cast<int>(lost));
          EXPECT_LE(lost, 0) << "trial " << trial << "\n" << text;
        }
      } else {
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st << "\n" << text;
        ++kills;
        max_lost_kill = std::max<int>(max_lost_kill, static_cast<int>(lost));
        EXPECT_LE(lost, 1) << "trial " << trial << "\n" << text;
      }
      if (rng() % 3 == 0 && newest() > 0) {  // damage a file of the newest checkpoint
        const auto ck = run_dir / "checkpoints" / ckpt(newest());
        std::vector<stdfs::path> files;
        for (const auto& e : stdfs::recursive_directory_iterator(ck))
          if (e.is_regular_file() && e.path().filename() != "COMPLETE" && e.path().filename() != "MANIFEST.json")
            files.push_back(e.path());
        std::sort(files.begin(), files.end());
        const auto victim = files[rng() % files.size()];
        const auto size = stdfs::file_size(victim);
        switch (rng() % 3) {
          case 0: stdfs::resize_file(victim, size / 2); break;
          case 1: {  // one byte inverted
            std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
            const auto at = static_cast<std::streamoff>(rng() % std::max<uintmax_t>(size, 1));
            char c = 0;
            f.seekg(at);
            f.read(&c, 1);
            c = static_cast<char>(~c);
            f.seekp(at);
            f.write(&c, 1);
            break;
          }
          default: stdfs::remove(victim);
        }
        ++damages;
        damaged = ckpt(newest());
      }
    }
    ASSERT_TRUE(finished) << "trial " << trial << " never finished";
    const auto a = json_file_lines(straight / "metrics.jsonl"), b = json_file_lines(run_dir / "metrics.jsonl");
    ASSERT_EQ(b.size(), static_cast<size_t>(total)) << "trial " << trial;
    expect_same_metrics(a, b, 0, 20);
  }
  std::printf("fault injection: 50 runs, %d starts, %d SIGKILLs (at most %d step lost), %d SIGTERMs (at most %d lost), "
              "%d damaged checkpoints\n", starts, kills, max_lost_kill, terms, max_lost_term, damages);
  EXPECT_GE(kills + terms + damages, 50);
  EXPECT_GT(kills, 10);
  EXPECT_GT(terms, 10);
  EXPECT_GT(damages, 5);
}

}  // namespace
}  // namespace keel::testing
