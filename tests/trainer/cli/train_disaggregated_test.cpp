// keel train with dist.placement disaggregated on 4 Gloo processes (keel launch), tiny model:
// - synchronous (max_staleness 0) with 2 data-parallel learners, 1 rollout and 1 reward rank gives
//   the same per-step metrics and final weights as one process (generation is seeded per global
//   row: RolloutOptions.first_row), for GRPO and for PPO with a separate critic, and reports the
//   weight broadcast;
// - async (max_staleness 1, 1 learner, 3 rollout ranks scoring their own rows): every batch after
//   the first arrives one version stale and is trained on, none dropped; with
//   KEEL_TEST_ROLLOUT_LAG=1 the rollout ranks run one batch further ahead, so batches 3 and 4 arrive
//   two versions stale and are dropped and counted;
// - a rank killed mid-step takes the job down (non-zero, naming it); resuming from the last
//   checkpoint finishes the run with the uninterrupted run's metrics and weights; a non-finite
//   step rolls the learners back to the last checkpoint and the run goes on;
// - a stateful reward's state is checkpointed where it is scored (the reward rank, or each rollout
//   rank that scores its own rows) and restored there on resume.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kTiny = kTinyArithmeticRun + R"(
batch: {prompts_per_step: 6, mini_batch_size: 12, micro_batch_size: 2, epochs: 2}
learner: {algorithm: grpo}
kl: {in_loss: true, coef: 0.01}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)";

const char* kSync = "dist.placement=disaggregated dist.learner_ranks=2 dist.rollout_ranks=1 dist.reward_ranks=1";
const char* kAsync =
    "dist.placement=disaggregated dist.learner_ranks=1 dist.rollout_ranks=3 dist.reward_ranks=0 rollout.max_staleness=1";

RunResult launch4(const ScratchDir& dir, const std::string& train_args, const std::string& env = "") {
  return run_keel("launch --nproc-per-node 4 --master-port " + std::to_string(dist::testing::free_port()) +
                      " --log-dir logs -- '" + std::string(KEEL_BINARY) + "' train c.yaml " + train_args,
                  dir.path(), env);
}

TEST(TrainDisaggregatedDist, SynchronousFourRanksEqualOneProcess) {
  ScratchDir dir("disagg");
  dir.write("c.yaml", kTiny);
  auto r = run_keel("train c.yaml run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " dist.bucket_mb=0.01 run.output_dir=four");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(stdfs::exists(dir.path() / "logs" / "rank_3.log")) << r.out;
  const auto a = json_file_lines(dir.path() / "one/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  expect_same_weights(dir.path() / "one/tiny", dir.path() / "four/tiny", "policy");
  // Each step reports the broadcast of the weights that sampled its batch (step 1: the initial one),
  // in buckets of 0.01 MiB.
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GT(b[i].value("sync/weight_gbps", 0.0), 0) << b[i];
    EXPECT_GT(b[i].value("sync/weight_buckets", 0.0), 1) << b[i];
    EXPECT_EQ(b[i].value("async/staleness_0", -1.0), 24) << b[i];  // 6 prompts x 4 samples, all fresh
    EXPECT_TRUE(b[i].contains("time/idle_learner_s") && b[i].contains("time/idle_rollout_s") &&
                b[i].contains("time/idle_reward_s"))
        << b[i];
  }
}

/// The 2 learner ranks of a disaggregated run sharded at `level` (`extra` to both runs): the
/// one-process run's metrics and weights (checkpoints written every step). Returns both runs' metrics.
std::pair<std::vector<nlohmann::json>, std::vector<nlohmann::json>> sharded_learners_equal_one_process(
    const std::string& level, const std::string& extra = "") {
  ScratchDir dir("disagg_" + level);
  dir.write("c.yaml", kTiny);
  auto r = run_keel("train c.yaml run.output_dir=one" + extra, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " run.output_dir=four checkpoint.every=1 dist.sharding=" + level + extra);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto a = json_file_lines(dir.path() / "one/tiny/metrics.jsonl");
  auto b = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  EXPECT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  expect_same_weights(dir.path() / "one/tiny", dir.path() / "four/tiny", "policy");
  return {a, b};
}

// Optimizer sharding: each learner holds half the moments.
TEST(TrainDisaggregatedDist, ShardedLearnersEqualOneProcess) {
  const auto [a, b] = sharded_learners_equal_one_process("optimizer");
  ASSERT_EQ(b.size(), 3u);
  EXPECT_NEAR(b[2]["perf/optimizer_state_mib"].get<double>() * 2, a[2]["perf/optimizer_state_mib"].get<double>(), 1e-3);
}

// Full sharding (ZeRO-3): the weights are whole again after each update, so the bucketed weight
// sync to the rollout rank is unchanged.
TEST(TrainDisaggregatedDist, FullyShardedLearnersEqualOneProcess) {
  sharded_learners_equal_one_process("full", " model.activation_checkpointing=true");
}

// LoRA: the rollout rank builds the same base and adapters, and only the adapters travel (the
// weight sync carries a small fraction of the full model's bytes); the run equals one process.
TEST(TrainDisaggregatedDist, LoraSyncsOnlyTheAdaptersAndEqualsOneProcess) {
  ScratchDir dir("disagg_lora");
  dir.write("c.yaml", kTiny);
  const std::string lora = " model.lora.rank=2 model.lora.alpha=4";
  auto r = run_keel("train c.yaml run.output_dir=one" + lora, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " run.output_dir=four" + lora);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " run.output_dir=full");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "one/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  const auto full = json_file_lines(dir.path() / "full/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  expect_same_weights(dir.path() / "one/tiny", dir.path() / "four/tiny", "policy");
  ASSERT_EQ(full.size(), 3u);
  EXPECT_LT(b[1]["sync/weight_gb"].get<double>(), 0.2 * full[1]["sync/weight_gb"].get<double>()) << b[1] << full[1];
}

// The judge stage on a reward rank: a rubric component fed by a yes/no judge scores the same on the
// reward rank of a disaggregated run as in one process (the judge loads where it scores).
TEST(TrainDisaggregatedDist, AJudgeOnTheRewardRankEqualsOneProcess) {
  ScratchDir dir("disagg_judge");
  const auto tok = rewards::testing::make_judge_tokenizer(dir.path() / "tok");
  models::Transformer judge(rewards::testing::tiny_for(*tok));
  models::testing::randomize(judge, 3);
  rewards::testing::save_with_tokenizer(judge, dir.path() / "judge", dir.path() / "tok");
  dir.write("c.yaml", kTiny + "reward:\n  judges:\n    - {name: crit, type: yes_no, params: {path: " +
                          (dir.path() / "judge").string() +
                          ", robustness_suite: none, criteria: [is it right, is it short]}}\n"
                          "  components:\n    - {scheme: task_arithmetic, name: correct, weight: 0.0}\n"
                          "    - {scheme: rubric}\n");
  auto r = run_keel("train c.yaml run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " run.output_dir=four");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "one/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b[i].value("judge/crit/prompts", 0.0), 48) << b[i];  // 24 rows x 2 criteria
    EXPECT_NEAR(b[i].value("reward/rubric/mean", -1.0), a[i].value("reward/rubric/mean", -2.0), 1e-6);
  }
}

TEST(TrainDisaggregatedDist, EnvironmentEpisodesOnTheRolloutRankEqualOneProcess) {
  // The calculator's multi-turn episodes run where the rollout runs; their turns, observations and
  // environment outputs travel to the reward and learner ranks.
  ScratchDir dir("disagg_env");
  dir.write("c.yaml", kTinyCalculatorRun + R"(
batch: {prompts_per_step: 6, mini_batch_size: 12, micro_batch_size: 2, epochs: 2}
kl: {in_loss: true, coef: 0.01}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)");
  auto r = run_keel("train c.yaml run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " run.output_dir=four");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "one/tiny/metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  for (const auto& m : b) EXPECT_GE(m.value("env/turns_mean", 0.0), 1.0) << m;
}

TEST(TrainDisaggregatedDist, SynchronousPpoWithASeparateCriticEqualsOneProcess) {
  ScratchDir dir("disaggppo");
  dir.write("c.yaml", kTiny);
  const std::string ppo =
      " learner.algorithm=ppo advantage.estimator=gae critic.mode=separate critic.lr=1.0e-2 kl.in_loss=false"
      " kl.in_reward=true kl.estimator=k1";
  auto r = run_keel("train c.yaml run.output_dir=one" + ppo, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + ppo + " run.output_dir=four");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_same_metrics(json_file_lines(dir.path() / "one/tiny/metrics.jsonl"),
                      json_file_lines(dir.path() / "four/tiny/metrics.jsonl"), 0, 30);
  expect_same_weights(dir.path() / "one/tiny", dir.path() / "four/tiny", "policy");
}

TEST(TrainDisaggregatedDist, AsyncRolloutsRunOneVersionAhead) {
  ScratchDir dir("async");
  dir.write("c.yaml", kTiny);
  const auto r = launch4(dir, std::string(kAsync) + " run.output_dir=out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto m = json_file_lines(dir.path() / "out/tiny/metrics.jsonl");
  ASSERT_EQ(m.size(), 3u);
  // Batch 1 from version 0 at version 0; batches 2, 3 from versions 0, 1 at versions 1, 2.
  EXPECT_EQ(m[0]["async/staleness_0"].get<double>(), 24);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(m[i]["async/staleness_1"].get<double>(), 24) << m[i];
    EXPECT_EQ(m[i]["async/staleness_0"].get<double>(), 0) << m[i];
    EXPECT_EQ(m[i]["async/policy_version_min"].get<double>(), static_cast<double>(i - 1)) << m[i];
  }
  for (const auto& s : m) {
    EXPECT_EQ(s["rollout/dropped_stale"].get<double>(), 0) << s;
    EXPECT_EQ(s["async/skipped_update"].get<double>(), 0) << s;
    EXPECT_GT(s["actor/grad_norm"].get<double>(), 0) << s;  // trained on the stale rows
    EXPECT_TRUE(s.contains("async/queue_depth")) << s;
  }
  EXPECT_GE(m[0]["async/queue_depth"].get<double>(), 1);
}

TEST(TrainDisaggregatedDist, RowsStalerThanMaxStalenessAreDroppedAndCounted) {
  ScratchDir dir("stale");
  dir.write("c.yaml", kTiny);
  const auto r = launch4(dir, std::string(kAsync) + " run.total_steps=4 run.output_dir=out", "KEEL_TEST_ROLLOUT_LAG=1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto m = json_file_lines(dir.path() / "out/tiny/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  // Batches 1-3 come from version 0, batch 4 from version 1: staleness 0, 1, 2, 2 (k = 1).
  EXPECT_EQ(m[0]["rollout/dropped_stale"].get<double>(), 0);
  EXPECT_EQ(m[1]["rollout/dropped_stale"].get<double>(), 0);
  EXPECT_EQ(m[1]["async/staleness_1"].get<double>(), 24);
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(m[i]["rollout/dropped_stale"].get<double>(), 24) << m[i];
    EXPECT_EQ(m[i]["async/staleness_max"].get<double>(), 2) << m[i];
    EXPECT_EQ(m[i]["async/skipped_update"].get<double>(), 1) << m[i];
    EXPECT_FALSE(m[i].contains("actor/grad_norm")) << m[i];
  }
  EXPECT_EQ(m[3]["rollout/dropped_stale_total"].get<double>(), 48);
}

TEST(TrainDisaggregatedDist, AKilledRankTakesTheJobDownAndTheRunResumes) {
  ScratchDir dir("dkill");
  dir.write("c.yaml", kTiny);
  auto r = run_keel("train c.yaml checkpoint.every=1 run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Rollout rank 2 dies as step 3 starts: learners and the reward rank are blocked on it.
  const auto t0 = std::chrono::steady_clock::now();
  r = launch4(dir, std::string(kSync) + " checkpoint.every=1 run.output_dir=four", "KEEL_TEST_EXIT_AT=2:3");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 2"), std::string::npos) << r.out;
  EXPECT_LT(s, 40.0) << "start-up and two steps included; the launcher itself stops the others within 10 s";
  // Step 1's checkpoint is complete before the rollout rank joins version 1's broadcast; step 2's
  // may or may not be (the launcher stops the learners wherever they are in step 2).
  ASSERT_TRUE(stdfs::exists(dir.path() / "four/tiny/checkpoints/step-00000001/COMPLETE")) << r.out;
  EXPECT_FALSE(stdfs::exists(dir.path() / "four/tiny/checkpoints/step-00000003")) << r.out;
  // Resume: the learners load the newest checkpoint, the rollout rank takes their weights by the
  // first broadcast, every rank restarts the data at its cursor — the resumed steps are the
  // uninterrupted run's (the metrics file is cut back to the checkpoint's step and continued).
  r = launch4(dir, std::string(kSync) + " checkpoint.every=1 run.output_dir=four run.resume=auto");
  expect_resumed_equals(r, dir.path() / "one/tiny", dir.path() / "four/tiny", 3, 30, "step-00000003");
}

// meanstd on the one reward rank sees the rows of one process in the same order; its state reaches
// learner 0 with each checkpoint step's batch, so a run killed at step 3 resumes to the one-process
// run. Three rollout ranks that score their own rows give three states; a run with one scorer
// cannot resume from them.
TEST(TrainDisaggregatedDist, StatefulRewardStatesAreCheckpointedWhereTheyAreScored) {
  ScratchDir dir("dstate");
  dir.write("c.yaml", kTiny + kStatefulReward);
  auto r = run_keel("train c.yaml checkpoint.every=1 run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " checkpoint.every=1 run.output_dir=four", "KEEL_TEST_EXIT_AT=2:3");
  ASSERT_NE(r.exit_code, 0) << r.out;
  r = launch4(dir, std::string(kSync) + " checkpoint.every=1 run.output_dir=four run.resume=auto");
  expect_resumed_equals(r, dir.path() / "one/tiny", dir.path() / "four/tiny", 3, 30, "step-00000003");
  const auto last = dir.path() / "four/tiny/checkpoints/step-00000003";
  EXPECT_TRUE(stdfs::exists(last / "reward_state.pt"));
  EXPECT_FALSE(stdfs::exists(last / "reward_state.scorer1.pt"));

  r = launch4(dir, std::string(kAsync) + " run.output_dir=async");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* f : {"reward_state.pt", "reward_state.scorer1.pt", "reward_state.scorer2.pt"})
    EXPECT_TRUE(stdfs::exists(dir.path() / "async/tiny/checkpoints/step-00000003" / f)) << f;
  r = launch4(dir, std::string(kSync) + " run.output_dir=async run.resume=auto run.total_steps=4");
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("cannot be split or merged"), std::string::npos) << r.out;
}

// A non-finite step (poisoned advantages at step 3, rollback_after 1) rolls the learners back to the
// step-2 checkpoint; the rollout ranks take the restored weights by the step's broadcast and the run
// finishes. Step 3's checkpoint holds step 2's weights (the failed step trained nothing).
TEST(TrainDisaggregatedDist, NonFiniteStepsRollTheLearnersBack) {
  ScratchDir dir("dnan");
  dir.write("c.yaml", kTiny);
  const auto r = launch4(dir, std::string(kSync) + " checkpoint.every=1 checkpoint.keep_last=5 optim.rollback_after=1 "
                              "run.total_steps=4 run.output_dir=four", "KEEL_TEST_INJECT_NAN_STEP=3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rolled back to"), std::string::npos) << r.out;
  const auto m = json_file_lines(dir.path() / "four/tiny/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2].value("actor/rolled_back", 0.0), 1.0) << m[2];
  EXPECT_FALSE(m[3].contains("actor/rolled_back")) << m[3];
  EXPECT_TRUE(std::isfinite(m[3].value("actor/grad_norm", NAN))) << m[3];
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  const auto ckpt = dir.path() / "four/tiny/checkpoints";
  const auto p2 = models::load_pretrained((ckpt / "step-00000002/policy").string(), reg).named_parameters();
  const auto p3 = models::load_pretrained((ckpt / "step-00000003/policy").string(), reg).named_parameters();
  const auto p4 = models::load_pretrained((ckpt / "step-00000004/policy").string(), reg).named_parameters();
  bool moved = false;
  for (const auto& [k, t] : p2) {
    EXPECT_TRUE(torch::equal(t, p3.at(k))) << k;
    moved = moved || !torch::equal(t, p4.at(k));
  }
  EXPECT_TRUE(moved) << "step 4 trains again";
}

TEST(TrainDisaggregatedDist, AKilledRewardRankTakesTheJobDown) {
  ScratchDir dir("dkillrw");
  dir.write("c.yaml", kTiny);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = launch4(dir, std::string(kSync) + " run.total_steps=50 run.output_dir=four", "KEEL_TEST_EXIT_AT=3:2");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 3"), std::string::npos) << r.out;
  EXPECT_LT(s, 40.0) << "start-up and a step included; the launcher itself stops the others within 10 s";
}

TEST(TrainDisaggregatedDist, UnsupportedCombinationsAreClearErrors) {
  ScratchDir dir("dbad");
  dir.write("c.yaml", kTiny);
  auto r = run_keel("validate c.yaml --world-size 3 " + std::string(kSync), dir.path());
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("must equal the world size 3"), std::string::npos) << r.out;
  r = run_keel("train c.yaml " + std::string(kSync) + " learner.algorithm=sft", dir.path(), "WORLD_SIZE=4 RANK=0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("needs a learner that samples rollouts"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::testing
