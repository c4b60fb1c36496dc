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
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "trainer/common/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

const char* kTiny = R"(
run: {name: tiny, total_steps: 3, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data:
  task: arithmetic
  task_params: {min_digits: 1, max_digits: 1}
  eval_size: 8
rollout: {samples_per_prompt: 4, max_new_tokens: 4}
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 2, epochs: 2}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)";

void expect_same_run(const stdfs::path& one, const stdfs::path& two, const std::vector<std::string>& models) {
  const auto a = json_file_lines(one / "metrics.jsonl"), b = json_file_lines(two / "metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), a.size());
  int compared = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (const auto& [k, v] : a[i].items()) {
      if (k == "wall_time" || k.rfind("time/", 0) == 0 || k.rfind("perf/", 0) == 0) continue;
      ASSERT_TRUE(b[i].contains(k)) << "step " << i + 1 << ": 2-rank run lacks " << k;
      EXPECT_NEAR(v.get<double>(), b[i][k].get<double>(), 1e-5) << "step " << i + 1 << " " << k;
      ++compared;
    }
  EXPECT_GT(compared, 30);
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  for (const auto& m : models) {
    const auto ckpt = stdfs::path("checkpoints") / "step-00000003" / m;
    const auto pa = models::load_pretrained((one / ckpt).string(), reg).named_parameters();
    const auto pb = models::load_pretrained((two / ckpt).string(), reg).named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (const auto& [k, t] : pa) EXPECT_TRUE(torch::allclose(t, pb.at(k), 1e-4, 1e-5)) << m << " " << k;
  }
}

void dp_equivalence(const std::string& learner_yaml, const std::vector<std::string>& models) {
  ScratchDir dir("dp");
  dir.write("c.yaml", std::string(kTiny) + learner_yaml);
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
