// Environment "subprocess": a full episode with examples/envs/count_env.py, episodes interleaved
// from several threads on one child, and the failure paths (hang, crash, malformed line, error
// answer, closed stdin, a program that dies at start, bad params), each timed and counted.
// The programs are run by python3 from PATH; the tests skip without it.
#include "trainer/env/subprocess_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "base/error.h"
#include "base/fs.h"
#include "base/node.h"
#include "base/reader.h"

namespace keel::env {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kCountEnv = KEEL_SOURCE_DIR "/examples/envs/count_env.py";

// A misbehaving environment: the action picks the failure. Its first step in an episode answers
// normally whatever the action, so every failure happens on the 2nd step of a running episode.
const char* kFaultyEnv = R"PY(
import json, os, sys, time
steps = {}
for line in sys.stdin:
    req = json.loads(line)
    op, ep = req["op"], req.get("episode")
    out, linger = {"ok": True}, False
    if op == "hello":
        out = {"info_keys": ["success"]}
    elif op == "reset":
        steps[ep] = 0
        out = {"observation": "go"}
    elif op == "step":
        steps[ep] += 1
        a = req["action"] if steps[ep] > 1 else "ok"
        if a == "hang":
            time.sleep(60)
        if a == "crash":
            os._exit(3)
        if a == "garbage":
            print("this is not json", flush=True)
            continue
        if a == "closein":  # answers, then reads nothing more
            os.close(0)
            linger = True
        out = {"observation": "ok", "reward": 1.0, "done": a == "end", "info": {"success": 1}}
        if a == "badtype":
            out["reward"] = "lots"
        if a == "error":
            out = {"error": "no such move"}
    print(json.dumps(out), flush=True)
    if linger:
        time.sleep(60)
)PY";

bool have_python() { return std::system("command -v python3 > /dev/null 2>&1") == 0; }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// The faulty environment in a fresh temp dir, removed with this object (declare it before the
/// factory, so the program outlives its child).
class FaultyEnvScript {
 public:
  FaultyEnvScript() {
    static int n = 0;
    dir_ = fs::temp_directory_path() / ("keel_subprocess_env_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "faulty_env.py") << kFaultyEnv;
  }
  ~FaultyEnvScript() {
    std::error_code ec;
    keel::fs::remove_tree(dir_, ec);
  }
  std::string dir() const { return dir_.string(); }
  /// env.params selecting it with `extra` keys ("timeout_s: 1").
  std::string params(const std::string& extra) const {
    return "{command: [python3, " + (dir_ / "faulty_env.py").string() + "]" + (extra.empty() ? "" : ", " + extra) + "}";
  }

 private:
  fs::path dir_;
};

/// Reads `yaml` as env.params through the registry; `errors` receives the config errors.
std::unique_ptr<EnvFactory> load(const std::string& yaml, std::vector<std::string>* errors = nullptr) {
  EnvRegistry reg("environment");
  register_subprocess(reg);
  auto root = config::parse_yaml_string("params: " + yaml + "\n", "env.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "", d);
  std::unique_ptr<EnvFactory> f;
  r.section("params", "", [&](config::Reader& s) { f = reg.get("subprocess").fn(s); });
  if (errors) *errors = d.errors();
  else EXPECT_TRUE(d.ok()) << d.errors()[0];
  return f;
}

SubprocessEnvFactory& as_subprocess(EnvFactory& f) { return dynamic_cast<SubprocessEnvFactory&>(f); }

data::PromptRecord record(int target) {
  data::PromptRecord r;
  r.id = "count/" + std::to_string(target);
  r.prompt = "count";
  r.meta["target"] = std::to_string(target);
  return r;
}

void expect_failed(const StepResult& s) {
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.observation, "");
  EXPECT_EQ(s.info.at("env_failed"), 1.0);
  EXPECT_EQ(s.info.at("success"), 0.0);
}

/// A normal 2-step episode on the faulty env (proves the factory works after a failure).
void expect_episode_works(EnvFactory& f) {
  auto e = f.make();
  EXPECT_EQ(e->reset(record(1), 0), "go");
  EXPECT_FALSE(e->step("first").done);
  const StepResult s = e->step("end");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  EXPECT_EQ(s.info.at("env_failed"), 0.0);
}

/// Child processes of this test process, alive or zombie ("" when /proc cannot say).
std::string children_of_self() {
  std::string all;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "children");
    std::string s;
    std::getline(in, s);
    all += s;
  }
  return all;
}

TEST(SubprocessEnv, FullEpisodeWithExampleEnv) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  auto f = load("{command: [python3, " + kCountEnv + "]}");
  EXPECT_EQ(f->info_keys(), (std::vector<std::string>{"success", "invalid_action", "env_failed"}));  // from hello

  auto e = f->make();
  EXPECT_EQ(e->reset(record(3), 42), "target 3. count 0");
  StepResult s = e->step("jump");
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.observation, "say up or stop");
  EXPECT_EQ(s.info.at("invalid_action"), 1.0);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(e->expert_action(), "up");
    s = e->step("up");
    EXPECT_FALSE(s.done);
    EXPECT_EQ(s.observation, "count " + std::to_string(i));
  }
  EXPECT_EQ(e->expert_action(), "stop");
  s = e->step(" stop\n");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  EXPECT_EQ(s.info.at("success"), 1.0);
  EXPECT_EQ(s.info.at("env_failed"), 0.0);
  EXPECT_EQ(e->expert_action(), std::nullopt);  // the episode is over

  // No meta target: 1..5 from the seed (7 % 5 + 1 = 3); stopping early earns nothing.
  data::PromptRecord plain;
  plain.prompt = "count";
  EXPECT_EQ(e->reset(plain, 7), "target 3. count 0");
  s = e->step("stop");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.info.at("success"), 0.0);
  EXPECT_EQ(as_subprocess(*f).restarts(), 0);
  EXPECT_EQ(as_subprocess(*f).failures(), 0);
}

TEST(SubprocessEnv, InterleavedEpisodesFromFourThreads) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  auto f = load("{command: [python3, " + kCountEnv + "], info_keys: [success]}");
  EXPECT_EQ(f->info_keys(), (std::vector<std::string>{"success", "env_failed"}));  // from the YAML
  std::atomic<int> wins{0}, episodes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        // Two episodes per thread alive at once, stepped alternately: 8 interleaved on one child.
        std::unique_ptr<Environment> e[2] = {f->make(), f->make()};
        bool done[2] = {false, false};
        for (int k = 0; k < 2; ++k) e[k]->reset(record(1 + (t + round + k) % 5), 0);
        while (!done[0] || !done[1]) {
          for (int k = 0; k < 2; ++k) {
            if (done[k]) continue;
            const StepResult s = e[k]->step(e[k]->expert_action().value_or("?"));
            if (s.done) {
              done[k] = true;
              wins += s.reward == 1.0;
              ++episodes;
            }
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(episodes, 24);
  EXPECT_EQ(wins, 24);
  EXPECT_EQ(as_subprocess(*f).restarts(), 0);
  EXPECT_EQ(as_subprocess(*f).failures(), 0);
}

TEST(SubprocessEnv, HangIsKilledAfterTimeoutAndRestarted) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  FaultyEnvScript script;
  auto f = load(script.params("timeout_s: 1"));
  auto& sp = as_subprocess(*f);
  auto bystander = f->make();  // an episode on the same child, not yet finished
  bystander->reset(record(1), 0);
  auto e = f->make();
  e->reset(record(1), 0);
  EXPECT_FALSE(e->step("hang").done);  // 1st step answers
  const auto t0 = Clock::now();
  const StepResult s = e->step("hang");  // 2nd step hangs
  const double detect_s = seconds_since(t0);
  std::cout << "[ measured ] hang detected and child killed after " << detect_s << " s (timeout_s 1)\n";
  expect_failed(s);
  EXPECT_GE(detect_s, 0.9);
  EXPECT_LT(detect_s, 3.0);
  EXPECT_EQ(sp.failures(), 1);
  expect_failed(e->step("again"));  // stays failed, counted once
  EXPECT_EQ(sp.failures(), 1);
  const auto t1 = Clock::now();
  expect_failed(bystander->step("ok"));  // its child is gone: failed at once
  EXPECT_LT(seconds_since(t1), 0.1);
  EXPECT_EQ(sp.failures(), 2);
  EXPECT_EQ(sp.restarts(), 0);  // restarted lazily, by the next reset
  expect_episode_works(*f);
  EXPECT_EQ(sp.restarts(), 1);
  EXPECT_EQ(sp.failures(), 2);
}

TEST(SubprocessEnv, CrashIsDetectedAtOnceAndRestarted) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  {
    FaultyEnvScript script;
    auto f = load(script.params("timeout_s: 5"));
    auto e = f->make();
    e->reset(record(1), 0);
    e->step("crash");
    const auto t0 = Clock::now();
    expect_failed(e->step("crash"));  // EOF, not the 5 s timeout
    const double detect_s = seconds_since(t0);
    std::cout << "[ measured ] crash (exit 3) detected after " << detect_s << " s (timeout_s 5)\n";
    EXPECT_LT(detect_s, 1.0);
    expect_episode_works(*f);
    EXPECT_EQ(as_subprocess(*f).restarts(), 1);
    EXPECT_EQ(as_subprocess(*f).failures(), 1);
  }
  // The factory is gone: its child was closed, killed if needed and reaped (no zombies).
  if (fs::exists("/proc/self/task/" + std::to_string(::getpid()) + "/children")) {
    EXPECT_EQ(children_of_self(), "");
  }
}

TEST(SubprocessEnv, MalformedLinesFailTheEpisodeAndRestart) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  FaultyEnvScript script;
  auto f = load(script.params("timeout_s: 5"));
  auto& sp = as_subprocess(*f);
  for (const char* bad : {"garbage", "badtype"}) {  // not JSON; "reward" not a number
    auto e = f->make();
    e->reset(record(1), 0);
    e->step(bad);
    const auto t0 = Clock::now();
    expect_failed(e->step(bad));
    EXPECT_LT(seconds_since(t0), 1.0) << bad;
  }
  expect_episode_works(*f);
  EXPECT_EQ(sp.restarts(), 2);
  EXPECT_EQ(sp.failures(), 2);
}

TEST(SubprocessEnv, ErrorAnswerFailsTheEpisodeOnly) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  FaultyEnvScript script;
  auto f = load(script.params(""));
  auto e = f->make();
  e->reset(record(1), 0);
  e->step("error");
  expect_failed(e->step("error"));
  expect_episode_works(*f);
  EXPECT_EQ(as_subprocess(*f).restarts(), 0);  // the child is still in step
  EXPECT_EQ(as_subprocess(*f).failures(), 1);
}

TEST(SubprocessEnv, ClosedStdinIsAFailureNotASigpipe) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  FaultyEnvScript script;
  auto f = load(script.params("timeout_s: 5"));
  auto e = f->make();
  e->reset(record(1), 0);
  e->step("first");
  EXPECT_FALSE(e->step("closein").done);  // answers, then closes its stdin and sleeps
  const auto t0 = Clock::now();
  expect_failed(e->step("x"));  // the write gets EPIPE (SIGPIPE would have killed this test)
  const double detect_s = seconds_since(t0);
  std::cout << "[ measured ] closed stdin detected after " << detect_s << " s (timeout_s 5)\n";
  EXPECT_LT(detect_s, 1.0);
  expect_episode_works(*f);
  EXPECT_EQ(as_subprocess(*f).restarts(), 1);
  EXPECT_EQ(as_subprocess(*f).failures(), 1);
}

TEST(SubprocessEnv, ProgramThatDiesAtStartIsAnError) {
  if (!have_python()) GTEST_SKIP() << "python3 not on PATH";
  FaultyEnvScript script;  // for its temp dir
  const std::string log = script.dir() + "/env.log";
  auto f = load(R"Y({command: [python3, -c, "import sys; sys.stderr.write('boom\\n'); sys.exit(2)"], stderr_file: )Y" + log + "}");
  auto e = f->make();
  try {
    e->reset(record(1), 0);
    FAIL() << "expected keel::Error";
  } catch (const Error& err) {
    const std::string msg = err.what();
    EXPECT_NE(msg.find("environment 'python3 -c \"import sys; sys.stderr.write('boom\\\\n'); sys.exit(2)\"' did not start"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exited with status 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("see its stderr in " + log), std::string::npos) << msg;
    std::cout << "[ message  ] " << msg << "\n";
  }
  EXPECT_THROW(f->info_keys(), Error);
  std::ifstream in(log);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "boom");  // the child's stderr, appended to stderr_file
}

TEST(SubprocessEnv, BadParamsAreClearErrors) {
  std::vector<std::string> errors;
  load("{cwd: /tmp}", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("params.command: missing required key"), std::string::npos) << errors[0];

  load("{command: []}", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("params.command: must not be empty"), std::string::npos) << errors[0];

  load("{command: [keel-no-such-env-program, --flag]}", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("cannot run 'keel-no-such-env-program --flag': 'keel-no-such-env-program' not found on PATH"),
            std::string::npos) << errors[0];

  load("{command: [./no_such_env.py], cwd: /tmp, timeout_s: 0}", &errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("params.timeout_s: must be > 0"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("'./no_such_env.py' is not an executable file (looked at /tmp/no_such_env.py)"), std::string::npos) << errors[1];

  load("{command: [python3], cwd: /no/such/dir, stderr_file: /no/such/dir/env.log}", &errors);
  ASSERT_EQ(errors.size(), 2u);
  const std::string both = errors[0] + "\n" + errors[1];
  EXPECT_NE(both.find("params.cwd: '/no/such/dir' is not a directory"), std::string::npos) << both;
  EXPECT_NE(both.find("params.stderr_file: directory '/no/such/dir' does not exist"), std::string::npos) << both;

  // Built without the config check (the program vanished after load): reset names the command.
  SubprocessEnvFactory f(SubprocessOptions{.command = {"/no/such/env_program", "x"}});
  auto e = f.make();
  try {
    e->reset(record(1), 0);
    FAIL() << "expected keel::Error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("environment command '/no/such/env_program x' cannot start"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace keel::env
