// keel train with environments, end to end: the external-protocol example (a Python program keel
// talks to in JSON lines) through SFT on its expert episodes and GRPO; a multi-turn run killed and
// resumed equals the uninterrupted one; a config whose environment cannot feed its estimator is
// refused by validate; ONI is accepted only where an environment reports message ids.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

bool have_python3() { return std::system("python3 -c pass > /dev/null 2>&1") == 0; }

std::string count_env_run(const std::string& learner, const std::string& name, int steps) {
  return fmt::format(R"(
run: {{name: {}, total_steps: {}, device: cpu, seed: 2, threads: 1}}
model:
  init: {{hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 128}}
data: {{train_file: {}/configs/data/count_tiny.jsonl, eval_fraction: 0.2}}
env:
  name: subprocess
  params: {{command: [python3, {}/examples/envs/count_env.py], info_keys: [success, invalid_action]}}
  max_turns: 7
  max_tokens: 80
rollout: {{samples_per_prompt: 4, max_new_tokens: 3}}
batch: {{prompts_per_step: 4, mini_batch_size: 16, micro_batch_size: 16}}
learner: {{algorithm: {}}}
optim: {{lr: 2.0e-3, lr_schedule: constant}}
eval: {{every: {}, num_prompts: 12, k: 1}}
checkpoint: {{every: 0, keep_last: 1}}
)",
                     name, steps, KEEL_SOURCE_DIR, KEEL_SOURCE_DIR, learner, steps);
}

TEST(TrainSlow, TheExternalEnvironmentExampleTrainsThroughKeelTrain) {
  if (!have_python3()) GTEST_SKIP() << "no python3 for the example environment";
  ScratchDir dir("env_external");
  dir.write("sft.yaml", count_env_run("sft", "count_sft", 40));
  auto r = run_keel("train sft.yaml run.output_dir=out", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sft = json_file_lines(dir.path() / "out/count_sft/metrics.jsonl");
  ASSERT_EQ(sft.size(), 40u);
  EXPECT_LT(sft.back()["sft/loss"].get<double>(), sft.front()["sft/loss"].get<double>()) << "SFT on the expert episodes learns";
  ASSERT_TRUE(sft.back().contains("eval/pass@1")) << "the evaluation plays the example's episodes";

  dir.write("rl.yaml", count_env_run("grpo", "count_rl", 4));
  r = run_keel("train rl.yaml run.output_dir=out model.path=out/count_sft", dir.path());  // the SFT run's checkpoint
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto rl = json_file_lines(dir.path() / "out/count_rl/metrics.jsonl");
  ASSERT_EQ(rl.size(), 4u);
  for (const auto& m : rl) {
    EXPECT_GT(m["env/turns_mean"].get<double>(), 1.0) << "multi-turn episodes";
    EXPECT_EQ(m["env/errors"].get<double>(), 0.0);
    EXPECT_EQ(m["env/timeouts"].get<double>(), 0.0);
    EXPECT_EQ(m["env/restarts"].get<double>(), 0.0) << "one child for the whole run";
    EXPECT_EQ(m["env/failures"].get<double>(), 0.0);
    EXPECT_TRUE(m.contains("reward/accuracy"));
    EXPECT_TRUE(m.contains("actor/pg_loss"));
  }
}

// The tiny calculator run (4 steps: run.total_steps=4 on the command line), checkpoints every 2.
const std::string kCalculatorRun = kTinyCalculatorRun + R"(
batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 4}
optim: {lr: 1.0e-2, lr_schedule: constant}
kl: {in_loss: true, coef: 0.01}
eval: {every: 2, num_prompts: 8, k: 2}
checkpoint: {every: 2, keep_last: 3}
)";

TEST(TrainSlow, AMultiTurnRunResumedAfterAKillEqualsTheUninterruptedRun) {
  ScratchDir dir("env_resume");
  dir.write("c.yaml", kCalculatorRun);
  auto r = run_keel("train c.yaml run.output_dir=straight run.total_steps=4", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ckpt2 = dir.path() / "killed/tiny/checkpoints/step-00000002/COMPLETE";
  ASSERT_TRUE(train_until_then_kill(dir.path(), "c.yaml", "killed", ckpt2)) << "the run never saved step 2";
  r = run_keel("train c.yaml run.output_dir=killed run.total_steps=4 run.resume=" +
                   (dir.path() / "killed/tiny/checkpoints/step-00000002").string(),
               dir.path());
  expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / "killed/tiny", 4, 40, "step-00000004");
  const auto m = json_file_lines(dir.path() / "straight/tiny/metrics.jsonl");
  EXPECT_TRUE(m.back().contains("env/turns_mean"));
}

TEST(Train, ValidateRefusesWhatAnEnvironmentCannotFeed) {
  ScratchDir dir("env_validate");
  const std::string batch = "batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 4}\n";
  // turn_grpo without an environment: nothing produces turn ids.
  dir.write("a.yaml", std::string(kTinyArithmeticRun) + batch + "learner: {algorithm: grpo}\nadvantage: {estimator: turn_grpo}\n");
  auto r = run_keel("validate a.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("needs turn_ids"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("env.name"), std::string::npos) << r.out;
  // An environment made for another task's records.
  dir.write("b.yaml", std::string(kTinyArithmeticRun) + batch + "env: {name: calculator}\nlearner: {algorithm: grpo}\n");
  r = run_keel("validate b.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("set data.task: calculator"), std::string::npos) << r.out;
  // The env scheme without an environment.
  dir.write("c.yaml", std::string(kTinyArithmeticRun) + batch + "learner: {algorithm: grpo}\nreward: {components: [{name: e, scheme: env}]}\n");
  r = run_keel("validate c.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("needs extra.env_return"), std::string::npos) << r.out;
  // Offline DPO cannot take an environment.
  dir.write("d.yaml", "run: {name: d}\ndata: {task: calculator}\nenv: {name: calculator}\nlearner: {algorithm: dpo}\n");
  r = run_keel("validate d.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("env.name"), std::string::npos) << r.out;
  // An unknown environment lists the known ones.
  dir.write("e.yaml", "run: {name: e}\nenv: {name: chess}\n");
  r = run_keel("validate e.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("calculator"), std::string::npos) << r.out;
}

// ONI counts each turn's message within its episode: validate refuses the oni scheme where no
// environment reports message ids (naming env.name), and accepts it, intrinsic reward from an info
// series, with one.
TEST(Train, ValidateAcceptsOniOnlyWithAnEnvironmentsMessageIds) {
  ScratchDir dir("env_oni");
  const std::string batch = "batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 4}\n";
  const std::string oni = "learner: {algorithm: grpo}\nreward: {components: [{name: o, scheme: oni, params: {c_llm: 0.4, "
                          "intrinsic: extra.subtasks_completed_turns}}]}\n";
  dir.write("a.yaml", std::string(kTinyArithmeticRun) + batch + oni);
  auto r = run_keel("validate a.yaml", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("needs extra.message_ids"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("env.name"), std::string::npos) << r.out;
  dir.write("b.yaml", "run: {name: b, device: cpu}\ndata: {task: gridworld}\nenv: {name: gridworld}\n" + batch + oni);
  r = run_keel("validate b.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace keel::testing
