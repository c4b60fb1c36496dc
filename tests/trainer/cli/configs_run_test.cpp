// Every runnable config under configs/ trains for 2 steps (the contract: configs are sized
// to the tiny default so that this stays cheap). Run from the source directory, so that data paths
// like configs/data/*.jsonl resolve as they do for a user in a checkout. configs/real/ holds
// configs for real models (validated by CliConfig.EveryConfigUnderConfigsValidates, not run);
// configs/reference.yaml is the generated key reference; the quickstart's GRPO stage runs from its
// SFT stage's checkpoint; configs/judges/ run as chains in judge_chain_test.cpp, configs/envs/ as chains
// here (EnvChainsSlow).
#include <gtest/gtest.h>

#include <cstdlib>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/dist/dist_test_util.h"
#include "base/fs.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

std::vector<std::string> runnable_configs() {
  std::vector<std::string> out;
  const auto root = stdfs::path(KEEL_SOURCE_DIR) / "configs";
  for (const auto& e : stdfs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
    const auto rel = stdfs::relative(e.path(), KEEL_SOURCE_DIR).string();
    if (rel == "configs/reference.yaml" || rel.rfind("configs/real/", 0) == 0 || rel == "configs/quickstart.yaml")
      continue;
    // The judge chains (configs/judges/) run in JudgeChainSlow: their RL configs need judges trained first.
    if (rel.rfind("configs/judges/", 0) == 0) continue;
    // The environment chains (configs/envs/) run in EnvChainsSlow: their RL stage starts from their SFT stage.
    if (rel.rfind("configs/envs/", 0) == 0) continue;
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ConfigsRunSlow : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigsRunSlow, TwoSteps) {
  ScratchDir dir("cfgrun");
  const std::string cfg = GetParam();
  // Reward-model configs run through keel train-rm (their checkpoints hold model/, not policy/).
  const bool rm = fs::read_file(stdfs::path(KEEL_SOURCE_DIR) / cfg).find("algorithm: rm") != std::string::npos;
  // Configs for several ranks run under `keel launch` with their launch line's process count.
  const int nproc = config_nproc(fs::read_file(stdfs::path(KEEL_SOURCE_DIR) / cfg));
  const std::string launch = nproc > 1 ? "launch --nproc-per-node " + std::to_string(nproc) + " --master-port " +
                                             std::to_string(dist::testing::free_port()) + " --log-dir " +
                                             (dir.path() / "logs").string() + " -- '" KEEL_BINARY "' "
                                       : "";
  const auto r = run_keel(launch + std::string(rm ? "train-rm " : "train ") + cfg + " run.total_steps=2 run.threads=1 eval.num_prompts=4 run.output_dir=" +
                              dir.path().string() + " run.name=x",
                          KEEL_SOURCE_DIR);
  ASSERT_EQ(r.exit_code, 0) << cfg << "\n" << r.out;
  const auto m = json_file_lines(dir.path() / "x" / "metrics.jsonl");
  ASSERT_EQ(m.size(), 2u) << r.out;
  for (const auto& line : m) {
    for (const auto& [k, v] : line.items())
      if (v.is_number_float()) {
        EXPECT_TRUE(std::isfinite(v.get<double>())) << cfg << ": " << k;
      }
  }
  EXPECT_TRUE(stdfs::exists(dir.path() / "x" / "checkpoints" / "step-00000002" / (rm ? "model" : "policy") / "config.json"))
      << r.out;
}

/// The environment chains: configs/envs/<chain>.yaml, each with its SFT stage <chain>_sft.yaml (or,
/// for a variant such as guessing_igpo, its base chain's).
std::vector<std::string> env_chains() {
  std::vector<std::string> out;
  for (const auto& e : stdfs::directory_iterator(stdfs::path(KEEL_SOURCE_DIR) / "configs/envs")) {
    const std::string n = e.path().stem().string();
    if (e.path().extension() == ".yaml" && !(n.size() > 4 && n.substr(n.size() - 4) == "_sft")) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class EnvChainsSlow : public ::testing::TestWithParam<std::string> {};

// Each chain's SFT stage trains 2 steps into runs/<its name> of a scratch directory that sees the
// checkout's configs/ and examples/, as a user's checkout would; its RL stage then trains 2 steps
// from there (model.path: runs/<sft>, and judges reading it).
TEST_P(EnvChainsSlow, SftThenRlTwoStepsEach) {
  ScratchDir dir("envchain");
  for (const char* d : {"configs", "examples"}) stdfs::create_directory_symlink(stdfs::path(KEEL_SOURCE_DIR) / d, dir.path() / d);
  const std::string chain = GetParam();
  if (fs::read_file(stdfs::path(KEEL_SOURCE_DIR) / "configs/envs" / (chain + ".yaml")).find("command: [python3") !=
          std::string::npos &&
      std::system("python3 -c pass > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 for the example environment";
  std::string sft = chain + "_sft";
  if (!stdfs::exists(stdfs::path(KEEL_SOURCE_DIR) / "configs/envs" / (sft + ".yaml"))) sft = chain.substr(0, chain.rfind('_')) + "_sft";
  const std::string common = " run.total_steps=2 run.threads=1 eval.num_prompts=4";
  auto r = run_keel("train configs/envs/" + sft + ".yaml" + common + " run.output_dir=runs", dir.path());
  ASSERT_EQ(r.exit_code, 0) << sft << "\n" << r.out;
  r = run_keel("train configs/envs/" + chain + ".yaml" + common + " run.output_dir=out run.name=x", dir.path());
  ASSERT_EQ(r.exit_code, 0) << chain << "\n" << r.out;
  const auto m = json_file_lines(dir.path() / "out/x/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u) << r.out;
  for (const auto& line : m) EXPECT_GE(line.value("env/turns_mean", 0.0), 1.0) << chain;
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvChainsSlow, ::testing::ValuesIn(env_chains()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// Evaluation must not feed the reward's state (meanstd's running statistics here): a run that
// evaluates every step checkpoints the same reward state, and trains the same, as one that never
// evaluates.
TEST(RewardStateSlow, EvaluationLeavesTheRewardStateUntouched) {
  ScratchDir dir("evalstate");
  const auto run = [&](const std::string& name, int every) {
    const auto r = run_keel("train configs/rewards/meanstd.yaml run.total_steps=2 run.threads=1 eval.num_prompts=8 "
                            "eval.every=" + std::to_string(every) + " run.output_dir=" + dir.path().string() +
                                " run.name=" + name,
                            KEEL_SOURCE_DIR);
    EXPECT_EQ(r.exit_code, 0) << r.out;
  };
  run("with_eval", 1);
  run("without_eval", 0);
  const auto state = [&](const std::string& name) {
    return fs::read_file(dir.path() / name / "checkpoints" / "step-00000002" / "reward_state.pt");
  };
  EXPECT_EQ(state("with_eval"), state("without_eval"));
  const auto a = json_file_lines(dir.path() / "with_eval" / "metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "without_eval" / "metrics.jsonl");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(a[1].contains("eval/pass@1"));
  for (const auto& [k, v] : b[1].items())
    if (k.rfind("reward/", 0) == 0 || k.rfind("actor/", 0) == 0) {
      EXPECT_EQ(a[1].at(k), v) << k;
    }
}

INSTANTIATE_TEST_SUITE_P(Configs, ConfigsRunSlow, ::testing::ValuesIn(runnable_configs()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param.substr(std::string("configs/").size());
                           n = n.substr(0, n.size() - 5);
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(ConfigsRunSlow, QuickstartGrpoStageRunsFromTheSftStage) {
  ScratchDir dir("cfgqs");
  auto r = run_keel("train configs/quickstart_sft.yaml run.total_steps=2 run.threads=1 eval.num_prompts=4 "
                    "run.output_dir=" + dir.path().string(),
                    KEEL_SOURCE_DIR);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sft = dir.path() / "quickstart_sft" / "checkpoints" / "step-00000002" / "policy";
  ASSERT_TRUE(stdfs::exists(sft / "config.json")) << r.out;
  r = run_keel("train configs/quickstart.yaml run.total_steps=2 run.threads=1 eval.num_prompts=4 run.output_dir=" +
                   dir.path().string() + " model.path=" + sft.string(),
               KEEL_SOURCE_DIR);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(json_file_lines(dir.path() / "quickstart" / "metrics.jsonl").size(), 2u);
}

}  // namespace
}  // namespace keel::testing
