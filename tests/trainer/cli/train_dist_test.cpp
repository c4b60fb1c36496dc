// keel train on several ranks (colocated data parallel over Gloo, launched by `keel launch`): the
// same global batch and seed on 2 ranks give the same per-step metrics and weights as 1 rank, for
// GRPO and for PPO with a separate critic; a rank that dies mid-job takes the job down with a
// non-zero exit naming it, within 10 s; a stateful reward keeps a state per rank, and every rank's
// is checkpointed and resumed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "trainer/checkpoint/reward_state_io.h"
#include "base/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

// adam_eps 1e-6, not 1e-8: one process and W ranks sum a gradient in different orders, and AdamW
// moves an element whose gradient nearly cancels by lr * g / (|g| + eps), so a 1e-11 difference of
// summation order there moves the weight by lr * 1e-11 / eps: 1.6e-5 at eps 1e-8 on an AMD avx2
// machine (over these tests' 1e-5), 1e-7 at 1e-6. A sharding error moves weights by ~lr.
const std::string kTiny = kTinyArithmeticRun + R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 2, epochs: 2}
optim: {lr: 1.0e-2, lr_schedule: constant, adam_eps: 1.0e-6}
eval: {every: 0}
checkpoint: {every: 0}
)";

void expect_same_run(const stdfs::path& one, const stdfs::path& two, const std::vector<std::string>& models,
                     int min_compared) {
  const auto a = json_file_lines(one / "metrics.jsonl"), b = json_file_lines(two / "metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, min_compared);
  for (const auto& m : models) expect_same_weights(one, two, m);
}

RunResult launch(int ranks, const ScratchDir& dir, const std::string& train_args) {
  return run_keel("launch --nproc-per-node " + std::to_string(ranks) + " --master-port " +
                      std::to_string(dist::testing::free_port()) + " --log-dir logs -- '" + std::string(KEEL_BINARY) +
                      "' train c.yaml " + train_args,
                  dir.path());
}

/// `overrides` go to both runs; `rank_overrides` only to the multi-rank one (dist.sharding).
void dp_equivalence(const std::string& learner_yaml, const std::vector<std::string>& models, int min_compared = 30,
                    const std::string& overrides = "", const std::string& rank_overrides = "", int ranks = 2) {
  ScratchDir dir("dp");
  dir.write("c.yaml", kTiny + learner_yaml);
  auto r = run_keel("train c.yaml run.output_dir=one" + overrides, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch(ranks, dir, "run.output_dir=two metrics.tensorboard=true" + overrides + rank_overrides);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(stdfs::exists(dir.path() / "logs" / "rank_1.log")) << r.out;
  expect_same_run(dir.path() / "one/tiny", dir.path() / "two/tiny", models, min_compared);
  // One TensorBoard writer, on rank 0, with metrics.jsonl's keys and values.
  EXPECT_GT(expect_tfevents_mirror_jsonl(dir.path() / "two/tiny"), 0u);
}

TEST(TrainDist, TwoRanksEqualOneRankGrpo) {
  dp_equivalence("learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n", {"policy"});
}

TEST(TrainDist, TwoRanksEqualOneRankPpoWithASeparateCritic) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n"
                 "kl: {in_reward: true, estimator: k1, coef: 0.01}\n",
                 {"policy", "critic"});
}

// LoRA: the ranks hold the same base and adapters (drawn from the run seed, then broadcast); only the
// adapters' gradients are reduced.
TEST(TrainDist, TwoRanksEqualOneRankGrpoWithLora) {
  dp_equivalence("learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n", {"policy"}, 30,
                 " model.lora.rank=4 model.lora.alpha=8");
}

// ZeRO-1 (dist.sharding: optimizer): each rank keeps the AdamW moments of its slice of the
// parameters; the weights and metrics are those of one process, for every learner, also on 4 ranks.
TEST(TrainDist, ShardedOptimizerEqualsOneRankGrpo) {
  dp_equivalence("learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n", {"policy"}, 30, "",
                 " dist.sharding=optimizer");
}

TEST(TrainDist, ShardedOptimizerEqualsOneRankPpoWithASeparateCritic) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n",
                 {"policy", "critic"}, 30, "", " dist.sharding=optimizer");
}

TEST(TrainDist, ShardedOptimizerEqualsOneRankSftAndDpo) {
  dp_equivalence("learner: {algorithm: sft}\n", {"policy"}, 10, "", " dist.sharding=optimizer");
  dp_equivalence("learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n", {"policy"}, 15, "",
                 " dist.sharding=optimizer");
}

TEST(TrainDist, ShardedOptimizerOnFourRanksEqualsOneRank) {
  dp_equivalence("learner: {algorithm: grpo}\n", {"policy"}, 30, "", " dist.sharding=optimizer", 4);
}

// Each rank's share of the moments (perf/optimizer_state_mib, rank 0's): a quarter on 4 ranks, up
// to the padding of the last slice.
TEST(TrainDist, ShardedOptimizerHoldsASliceOfTheState) {
  ScratchDir dir("dpshard_mem");
  dir.write("c.yaml", kTiny + "learner: {algorithm: grpo}\n");
  auto r = launch(4, dir, "run.output_dir=none");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = launch(4, dir, "run.output_dir=sharded dist.sharding=optimizer");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto whole = json_file_lines(dir.path() / "none/tiny/metrics.jsonl").back()["perf/optimizer_state_mib"].get<double>();
  const auto slice = json_file_lines(dir.path() / "sharded/tiny/metrics.jsonl").back()["perf/optimizer_state_mib"].get<double>();
  EXPECT_GT(whole, 0);
  EXPECT_NEAR(slice / whole, 0.25, 0.01);
}

// Checkpoints of a sharded run hold every rank's optimizer shard, in parameter coordinates: a 2-rank
// sharded run stopped after step 2 resumes on 4 sharded ranks, and one on 1 process (whole moments
// assembled from the shards), to the uninterrupted 1-process run.
TEST(TrainDist, ShardedRunsResumeOnAnotherRankCount) {
  ScratchDir dir("dpshard_resume");
  dir.write("c.yaml", kTiny + "learner: {algorithm: grpo}\n");
  auto r = run_keel("train c.yaml run.output_dir=straight run.total_steps=4 checkpoint.every=1", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* to : {"four", "one"}) {
    SCOPED_TRACE(to);
    const std::string out = std::string(" run.output_dir=") + to;
    r = launch(2, dir, "run.total_steps=2 checkpoint.every=1 dist.sharding=optimizer" + out);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    if (std::string(to) == "four")
      r = launch(4, dir, "run.total_steps=4 checkpoint.every=1 dist.sharding=optimizer run.resume=auto" + out);
    else
      r = run_keel("train c.yaml run.total_steps=4 checkpoint.every=1 run.resume=auto" + out, dir.path());
    expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / to / "tiny", 4, 40, "step-00000004");
  }
}

// ZeRO-2 and ZeRO-3 (dist.sharding: gradients / full): each layer's gradients reduce-scattered in
// its recomputed backward, and with full its weights gathered for each use and freed after; the
// weights and metrics are those of one process (with the same activation checkpointing, which
// recomputes exactly), for every learner, on 2 and 4 ranks.
const std::string kCkpt = " model.activation_checkpointing=true";

TEST(TrainDist, ShardedGradientsAndWeightsEqualOneRankGrpo) {
  for (const char* level : {"gradients", "full"}) {
    SCOPED_TRACE(level);
    dp_equivalence("learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n", {"policy"}, 30, kCkpt,
                   std::string(" dist.sharding=") + level);
  }
}

TEST(TrainDist, FullShardingEqualsOneRankPpoWithASeparateCritic) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n",
                 {"policy", "critic"}, 30, kCkpt, " dist.sharding=full");
}

// The value head shared with the policy (critic.mode value_head) lives in the root unit, beside the
// LM head.
TEST(TrainDist, FullShardingEqualsOneRankPpoWithAValueHead) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: value_head}\n", {"policy"},
                 30, kCkpt, " dist.sharding=full");
}

TEST(TrainDist, FullShardingEqualsOneRankSftAndDpo) {
  dp_equivalence("learner: {algorithm: sft}\n", {"policy"}, 10, kCkpt, " dist.sharding=full");
  dp_equivalence("learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n", {"policy"}, 15, kCkpt,
                 " dist.sharding=full");
}

TEST(TrainDist, GradientAndFullShardingOnFourRanksEqualOneRankGrpo) {
  // Two layers: the next layer's gather is prefetched while one computes.
  for (const char* level : {"gradients", "full"}) {
    SCOPED_TRACE(level);
    dp_equivalence("learner: {algorithm: grpo}\n", {"policy"}, 30, kCkpt + " model.init.num_layers=2",
                   std::string(" dist.sharding=") + level, 4);
  }
}

TEST(TrainDist, GradientShardingEqualsOneRankPpoSftAndDpo) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n",
                 {"policy", "critic"}, 30, kCkpt, " dist.sharding=gradients");
  dp_equivalence("learner: {algorithm: sft}\n", {"policy"}, 10, kCkpt, " dist.sharding=gradients");
  dp_equivalence("learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n", {"policy"}, 15, kCkpt,
                 " dist.sharding=gradients");
}

// Every level, every learner, on 4 ranks.
TEST(TrainDist, EveryShardingLevelOnFourRanksEqualsOneRankForEveryLearner) {
  for (const char* level : {"optimizer", "gradients", "full"}) {
    SCOPED_TRACE(level);
    const std::string shard = std::string(" dist.sharding=") + level;
    dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n",
                   {"policy", "critic"}, 30, kCkpt, shard, 4);
    dp_equivalence("learner: {algorithm: sft}\n", {"policy"}, 10, kCkpt, shard, 4);
    dp_equivalence("learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n", {"policy"}, 15, kCkpt, shard, 4);
  }
}

// The measured peak of weights, gradients and moments per rank (perf/model_state_peak_mib, rank
// 0's) on 4 ranks: below none's at each level, full lowest.
TEST(TrainDist, ShardingLevelsLowerThePeakOfModelStates) {
  ScratchDir dir("dpshard_peak");
  dir.write("c.yaml", kTiny + "learner: {algorithm: grpo}\n");
  std::map<std::string, double> peak;
  for (const char* level : {"none", "optimizer", "gradients", "full"}) {
    // Four layers: the root unit (embeddings, LM head) is then the smaller part, as in real models.
    auto r = launch(4, dir, std::string("run.total_steps=1 model.init.num_layers=4 run.output_dir=") + level +
                                " dist.sharding=" + level + kCkpt);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    peak[level] = json_file_lines(dir.path() / level / "tiny/metrics.jsonl").back()["perf/model_state_peak_mib"].get<double>();
  }
  EXPECT_GT(peak["none"], 0);
  EXPECT_LT(peak["optimizer"], peak["none"]);
  EXPECT_LT(peak["gradients"], peak["optimizer"]);
  EXPECT_LT(peak["full"], peak["gradients"]);
}

// A fully sharded 2-rank run killed while writing step 3's checkpoint (its staging directory left
// with one rank's optimizer shard) resumes from step 2, on the same 2 ranks and on 4 (reshard), to
// the uninterrupted 1-process run; its checkpoints hold one optimizer shard file per rank. A
// 1-process checkpoint resumes on 2 fully sharded ranks too.
TEST(TrainDist, FullyShardedRunKilledMidCheckpointResumesOnTheSameAndAnotherRankCount) {
  ScratchDir dir("dpfull_resume");
  dir.write("c.yaml", kTiny + "learner: {algorithm: grpo}\n");
  auto r = run_keel("train c.yaml run.output_dir=straight run.total_steps=4 checkpoint.every=1 checkpoint.keep_last=4" + kCkpt,
                    dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const int ranks : {2, 4}) {
    SCOPED_TRACE(ranks);
    const std::string out = " run.output_dir=to" + std::to_string(ranks);
    r = launch(2, dir, "run.total_steps=3 checkpoint.every=1 dist.sharding=full" + out + kCkpt);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // Each rank wrote its own moments into the one checkpoint; nothing was gathered into a whole file.
    const auto ckpts = dir.path() / ("to" + std::to_string(ranks)) / "tiny/checkpoints";
    EXPECT_TRUE(stdfs::exists(ckpts / "step-00000002/optimizer.shard-00000-of-00002.pt"));
    EXPECT_TRUE(stdfs::exists(ckpts / "step-00000002/optimizer.shard-00001-of-00002.pt"));
    EXPECT_FALSE(stdfs::exists(ckpts / "step-00000002/optimizer.pt"));
    EXPECT_NE(fs::read_file(ckpts / "step-00000002/MANIFEST.json").find("optimizer.shard-00001-of-00002.pt"),
              std::string::npos);
    // The kill: step 3's checkpoint back to an uncommitted staging directory holding rank 0's shard only.
    const auto staging = ckpts / ".staging-step-00000003";
    stdfs::rename(ckpts / "step-00000003", staging);
    for (const char* f : {"COMPLETE", "MANIFEST.json", "optimizer.shard-00001-of-00002.pt"}) stdfs::remove(staging / f);
    r = launch(ranks, dir, "run.total_steps=4 checkpoint.every=1 dist.sharding=full run.resume=auto" + out + kCkpt);
    expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / ("to" + std::to_string(ranks)) / "tiny", 4, 40,
                          "step-00000004");
    EXPECT_NE(r.out.find("step-00000002"), std::string::npos) << r.out;  // resumed from the last complete one
  }
  // An unsharded run's checkpoint (a whole optimizer.pt) resumed on 2 fully sharded ranks: each takes
  // its slices of the whole moments.
  stdfs::copy(dir.path() / "straight", dir.path() / "fromone", stdfs::copy_options::recursive);
  std::error_code ec;
  for (const char* step : {"step-00000003", "step-00000004"}) fs::remove_tree(dir.path() / "fromone/tiny/checkpoints" / step, ec);
  ASSERT_TRUE(stdfs::exists(dir.path() / "fromone/tiny/checkpoints/step-00000002/optimizer.pt"));
  r = launch(2, dir, "run.total_steps=4 checkpoint.every=1 dist.sharding=full run.resume=auto run.output_dir=fromone" + kCkpt);
  expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / "fromone/tiny", 4, 40, "step-00000004");
}

// DAPO's dynamic sampling: every rank filters each generation attempt's global rows, so the ranks
// keep (and top up with) the groups one process would. The length penalty makes some groups' rewards
// vary and others not (samples all of one length), so both paths run.
TEST(TrainDist, TwoRanksEqualOneRankDynamicSampling) {
  dp_equivalence("learner: {algorithm: grpo}\nfilter: {dynamic_sampling: true, metric: score, max_gen_batches: 3}\n"
                 "reward:\n  components:\n    - {scheme: task_arithmetic, name: correct, weight: 0.0}\n"
                 "    - {scheme: length_penalty, name: penalised, weight: 1.0, params: {input: prior.correct, "
                 "valid_len: 1, per_token: 0.1}}\n",
                 {"policy"});
}

// ReMax: each rank generates the greedy baselines of its own groups; they are gathered with the batch.
TEST(TrainDist, TwoRanksEqualOneRankRemax) {
  dp_equivalence("learner: {algorithm: grpo}\nadvantage: {estimator: remax}\n", {"policy"});
}

// SFT on the task's gold responses and offline DPO on its synthetic pairs: each rank takes its half
// of every mini-batch; token / pair counts, gradients and the guard's scalars are reduced.
TEST(TrainDist, TwoRanksEqualOneRankSft) { dp_equivalence("learner: {algorithm: sft}\n", {"policy"}, 10); }

TEST(TrainDist, TwoRanksEqualOneRankOfflineDpo) {
  dp_equivalence("learner: {algorithm: dpo}\ndpo: {loss: sigmoid, beta: 0.1}\n", {"policy"}, 15);
}

// Multi-turn episodes: each rank plays its share of the rows (the episodes seeded by their global
// row), so two ranks train what one does.
TEST(TrainDist, TwoRanksEqualOneRankOnEnvironmentEpisodes) {
  ScratchDir dir("dp_env");
  dir.write("c.yaml", kTinyCalculatorRun + R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 2, epochs: 2}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)");
  auto r = run_keel("train c.yaml run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) + " --log-dir logs -- '" +
                   std::string(KEEL_BINARY) + "' train c.yaml run.output_dir=two",
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_same_run(dir.path() / "one/tiny", dir.path() / "two/tiny", {"policy"}, 30);
}

TEST(TrainDist, ARankThatDiesTakesTheJobDown) {
  ScratchDir dir("dpkill");
  dir.write("c.yaml", std::string(kTiny) + "learner: {algorithm: grpo}\n");
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) +
                              " --log-dir logs -- '" + std::string(KEEL_BINARY) + "' train c.yaml run.total_steps=50",
                          dir.path(), "KEEL_TEST_EXIT_AT=1:2");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exit"), std::string::npos) << r.out;
  EXPECT_LT(s, 30.0) << "start-up included; the launcher itself must stop the others within 10 s";
}

// meanstd's running statistics live on each rank (each scores its own rows); the checkpoint holds
// both ranks' states, and a job killed at step 3 resumes from step 2 to the uninterrupted run's
// metrics. One process cannot take over two ranks' states.
TEST(TrainDist, EveryRanksRewardStateIsCheckpointedAndResumed) {
  ScratchDir dir("dpstate");
  dir.write("c.yaml", kTiny + "learner: {algorithm: grpo}\n" + kStatefulReward);
  const auto launch = [&](const std::string& args, const std::string& env) {
    return run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) +
                        " --log-dir logs -- '" + std::string(KEEL_BINARY) +
                        "' train c.yaml checkpoint.every=1 run.total_steps=4 " + args,
                    dir.path(), env);
  };
  auto r = launch("run.output_dir=straight", "");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ckpt = dir.path() / "straight/tiny/checkpoints/step-00000004";
  const auto state = [&](const char* file) {
    return checkpoint::decode_reward_state(fs::read_file(ckpt / file), file);
  };
  const auto s0 = state("reward_state.pt"), s1 = state("reward_state.scorer1.pt");
  ASSERT_FALSE(s0.empty());
  ASSERT_EQ(s0.size(), s1.size());
  bool differ = false;
  for (const auto& [k, t] : s0) differ = differ || !torch::equal(t, s1.at(k));
  EXPECT_TRUE(differ) << "each rank's statistics are of its own rows";

  r = launch("run.output_dir=killed", "KEEL_TEST_EXIT_AT=1:3");
  ASSERT_NE(r.exit_code, 0) << r.out;
  r = launch("run.output_dir=killed run.resume=auto", "");
  expect_resumed_equals(r, dir.path() / "straight/tiny", dir.path() / "killed/tiny", 4, 40, "step-00000004");

  r = run_keel("train c.yaml run.total_steps=5 run.output_dir=straight run.resume=auto", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot be split or merged"), std::string::npos) << r.out;
}

TEST(TrainDist, UnsupportedMultiRankCombinationsAreClearErrors) {
  ScratchDir dir("dpbad");
  dir.write("c.yaml", std::string(kTiny) + "learner: {algorithm: dpo}\ndpo: {online: true}\n");
  auto r = run_keel("train c.yaml", dir.path(), "WORLD_SIZE=2 RANK=0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("learner dpo (online) runs as one process"), std::string::npos) << r.out;
  r = run_keel("train c.yaml learner.algorithm=sft batch.mini_batch_size=6", dir.path(), "WORLD_SIZE=4 RANK=0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("mini_batch_size 6 is not a whole number"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::testing
