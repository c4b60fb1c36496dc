// keel train end to end on a tiny model: the exact-resume contract (2N steps straight equal N
// steps + kill -9 + resume), the NaN rollback (it goes on with the next batches), the run directory contents and its TensorBoard file.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "models/pretrained.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "base/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

// A tiny GRPO run: 2 prompts x 4 samples, 4 new tokens, 1-layer model, checkpoints every 2 steps.
const char* kTinyGrpo = R"(
run: {name: tiny, total_steps: 4, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data:
  task: arithmetic
  task_params: {min_digits: 1, max_digits: 1}
  eval_size: 8
rollout: {samples_per_prompt: 4, max_new_tokens: 4}
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 2}
learner: {algorithm: grpo}
optim: {lr: 1.0e-2, lr_schedule: constant}
kl: {in_loss: true, coef: 0.01}
eval: {every: 2, num_prompts: 8, k: 2}
checkpoint: {every: 2, keep_last: 3}
)";

/// metrics.jsonl lines without the keys that measure time.
std::vector<nlohmann::json> deterministic_metrics(const stdfs::path& file) {
  std::vector<nlohmann::json> out;
  for (const auto& j : json_file_lines(file)) {
    nlohmann::json kept;
    for (const auto& [k, v] : j.items())
      if (k != "wall_time" && k.rfind("time/", 0) != 0 && k.rfind("perf/", 0) != 0) kept[k] = v;
    out.push_back(kept);
  }
  return out;
}

TEST(TrainSlow, ResumeAfterKillIsExact) {
  ScratchDir dir("resume");
  dir.write("c.yaml", kTinyGrpo);
  // 1) Straight run of 4 steps.
  auto r = run_keel("train c.yaml run.output_dir=straight", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto straight = deterministic_metrics(dir.path() / "straight/tiny/metrics.jsonl");
  ASSERT_EQ(straight.size(), 4u);
  EXPECT_TRUE(stdfs::exists(dir.path() / "straight/tiny/checkpoints/step-00000004/COMPLETE"));
  EXPECT_TRUE(stdfs::exists(dir.path() / "straight/tiny/config.yaml"));
  EXPECT_TRUE(stdfs::exists(dir.path() / "straight/tiny/git_revision"));

  // 2) The same run (200 steps so it cannot finish), killed with SIGKILL once step 2 is saved.
  const auto ckpt2 = dir.path() / "killed/tiny/checkpoints/step-00000002/COMPLETE";
  ASSERT_TRUE(train_until_then_kill(dir.path(), "c.yaml", "killed", ckpt2)) << "the run never saved step 2";

  // 3) Resume from the step-2 checkpoint and finish at step 4 (constant lr: the schedule does
  // not depend on total_steps).
  r = run_keel("train c.yaml run.output_dir=killed run.resume=" + (dir.path() / "killed/tiny/checkpoints/step-00000002").string(),
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  const auto resumed = deterministic_metrics(dir.path() / "killed/tiny/metrics.jsonl");
  ASSERT_EQ(resumed.size(), 4u) << "metrics.jsonl must hold steps 1..4 exactly once";
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed[i], straight[i]) << "step " << i + 1;
}

TEST(TrainSlow, NonFiniteStepsRollBackToTheLastCheckpoint) {
  ScratchDir dir("nan");
  dir.write("c.yaml", kTinyGrpo);
  const auto r = run_keel("train c.yaml run.total_steps=5 optim.rollback_after=1", dir.path(), "KEEL_TEST_INJECT_NAN_STEP=3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("poisoned the advantages of step 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rolled back to"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step-00000002"), std::string::npos) << r.out;
  // The rollback does not replay steps: training goes on with step 4's batch from step 2's weights,
  // so each step has one line.
  const auto m = deterministic_metrics(dir.path() / "runs/tiny/metrics.jsonl");
  ASSERT_EQ(m.size(), 5u);
  for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m[i]["step"], static_cast<int>(i) + 1);
  EXPECT_EQ(m[2].value("actor/rolled_back", 0.0), 1.0) << m[2];
  for (const auto& line : m)  // a rolled-back step reports up to its failed update
    if (!line.contains("actor/rolled_back")) {
      EXPECT_TRUE(line["reward/mean"].is_number()) << line.dump();
    }
}

// The numerics guard's skipped-step count is part of the checkpoint and goes on from it on resume:
// step 1's optimizer steps are skipped (poisoned advantages), the run stops after step 2's
// checkpoint, and the resumed steps 3 and 4 report the straight run's actor/skipped_steps (> 0).
TEST(TrainSlow, ResumeKeepsTheSkippedStepCount) {
  ScratchDir dir("resume_skipped");
  dir.write("c.yaml", kTinyGrpo);
  auto r = run_keel("train c.yaml run.output_dir=straight", dir.path(), "KEEL_TEST_INJECT_NAN_STEP=1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=resumed run.total_steps=2", dir.path(), "KEEL_TEST_INJECT_NAN_STEP=1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("train c.yaml run.output_dir=resumed run.resume=auto", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "straight/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "resumed/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GT(a[i]["actor/skipped_steps"].get<double>(), 0) << a[i].dump();
    EXPECT_EQ(b[i]["actor/skipped_steps"], a[i]["actor/skipped_steps"]) << "step " << i + 1;
  }
}

// metrics.tensorboard: the event file in the run directory carries every metrics.jsonl key at every
// step (eval keys included), through the real training loop.
TEST(TrainSlow, TensorBoardEventsMirrorMetricsJsonl) {
  ScratchDir dir("tensorboard");
  dir.write("c.yaml", kTinyGrpo);
  const auto r = run_keel("train c.yaml run.total_steps=2 checkpoint.every=0 metrics.tensorboard=true", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(json_file_lines(dir.path() / "runs/tiny/metrics.jsonl").size(), 2u);
  EXPECT_GT(expect_tfevents_mirror_jsonl(dir.path() / "runs/tiny"), 20u);
}

// Every family `keel list models` offers trains from model.init; the checkpoint is an HF
// directory of that family (Qwen3's q_norm / k_norm included) that loads back.
TEST(Train, EveryModelFamilyTrainsFromInit) {
  for (const std::string family : {"llama", "qwen2", "qwen3", "mistral"}) {
    SCOPED_TRACE(family);
    ScratchDir dir("family_" + family);
    dir.write("c.yaml", kTinyGrpo);
    const auto r = run_keel("train c.yaml run.total_steps=2 checkpoint.every=2 eval.every=0 model.init.family=" + family,
                            dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto ckpt = dir.path() / "runs/tiny/checkpoints/step-00000002/policy";
    const auto cfg = nlohmann::json::parse(fs::read_file(ckpt / "config.json"));
    EXPECT_EQ(cfg["model_type"], family);
    models::ModelRegistry reg("model family");
    models::register_builtin_models(reg);
    const auto m = models::load_pretrained(ckpt.string(), reg);
    EXPECT_EQ(m.named_parameters().count("model.layers.0.self_attn.q_norm.weight"), family == "qwen3" ? 1u : 0u);
  }
}

TEST(Train, BadConfigFailsBeforeTraining) {
  ScratchDir dir("badtrain");
  dir.write("c.yaml", "learner: {algorithm: rm}\n");
  const auto r = run_keel("train c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("learner.algorithm rm is run by `keel train-rm c.yaml`"), std::string::npos) << r.out;
}

TEST(Train, DataOfTheWrongFormatIsAnError) {
  ScratchDir dir("badformat");
  dir.write("p.jsonl", "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n");
  dir.write("c.yaml", "learner: {algorithm: dpo}\ndata: {train_file: p.jsonl, format: prompts}\n");
  auto r = run_keel("train c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("data.format: offline DPO needs preference data, got format 'prompts'"), std::string::npos) << r.out;
  // Auto format: offline DPO reads preferences; a line without "rejected" is an error naming file:line.
  dir.write("prefs.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
  dir.write("d.yaml", "learner: {algorithm: dpo}\ndata: {train_file: prefs.jsonl}\n");
  r = run_keel("train d.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("prefs.jsonl:2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rejected"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::testing

namespace keel::testing {
namespace {

TEST(TrainSlow, SftCommandTrainsFromAnSftFile) {
  ScratchDir dir("sftcmd");
  std::string lines;
  for (int i = 0; i < 12; ++i)
    lines += "{\"prompt\": \"" + std::to_string(i) + "+1=\", \"response\": \"" + std::to_string(i + 1) + "\"}\n";
  dir.write("sft.jsonl", lines);
  dir.write("c.yaml", R"(run: {name: s, total_steps: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data: {train_file: sft.jsonl, eval_fraction: 0.2}
batch: {mini_batch_size: 4, micro_batch_size: 2}
optim: {lr: 1.0e-3}
)");
  const auto r = run_keel("sft c.yaml", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto cfg = fs::read_file(dir.path() / "runs/s/config.yaml");
  EXPECT_NE(cfg.find("algorithm: sft"), std::string::npos) << cfg;
  const auto metrics = json_file_lines(dir.path() / "runs/s/metrics.jsonl");
  for (const auto& j : metrics) EXPECT_GT(j.at("sft/tokens").get<double>(), 0) << j.dump();
  EXPECT_EQ(metrics.size(), 3u);
}

}  // namespace
}  // namespace keel::testing
