// keel train on several ranks (colocated data parallel over Gloo, launched by `keel launch`): the
// same global batch and seed on 2 ranks give the same per-step metrics and weights as 1 rank, for
// GRPO and for PPO with a separate critic; a rank that dies mid-job takes the job down with a
// non-zero exit naming it, within 10 s.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "trainer/common/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kTiny = kTinyArithmeticRun + R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 2, epochs: 2}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)";

void expect_same_run(const stdfs::path& one, const stdfs::path& two, const std::vector<std::string>& models) {
  const auto a = json_file_lines(one / "metrics.jsonl"), b = json_file_lines(two / "metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  for (const auto& m : models) expect_same_weights(one, two, m);
}

void dp_equivalence(const std::string& learner_yaml, const std::vector<std::string>& models) {
  ScratchDir dir("dp");
  dir.write("c.yaml", kTiny + learner_yaml);
  auto r = run_keel("train c.yaml run.output_dir=one", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_keel("launch --nproc-per-node 2 --master-port " + std::to_string(dist::testing::free_port()) + " --log-dir logs -- '" +
                   std::string(KEEL_BINARY) + "' train c.yaml run.output_dir=two",
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(stdfs::exists(dir.path() / "logs" / "rank_1.log")) << r.out;
  expect_same_run(dir.path() / "one/tiny", dir.path() / "two/tiny", models);
}

TEST(TrainDist, TwoRanksEqualOneRankGrpo) {
  dp_equivalence("learner: {algorithm: grpo}\nkl: {in_loss: true, coef: 0.01}\n", {"policy"});
}

TEST(TrainDist, TwoRanksEqualOneRankPpoWithASeparateCritic) {
  dp_equivalence("learner: {algorithm: ppo}\nadvantage: {estimator: gae}\ncritic: {mode: separate, lr: 1.0e-2}\n"
                 "kl: {in_reward: true, estimator: k1, coef: 0.01}\n",
                 {"policy", "critic"});
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

TEST(TrainDist, UnsupportedMultiRankCombinationsAreClearErrors) {
  ScratchDir dir("dpbad");
  dir.write("c.yaml", std::string(kTiny) + "learner: {algorithm: sft}\n");
  const auto r = run_keel("train c.yaml", dir.path(), "WORLD_SIZE=2 RANK=0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("data-parallel training is implemented for the grpo and ppo learners"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace keel::testing
