// The judge chains of configs/judges/, as scripts/judge_chains.sh runs them but short: the judges
// train for a few steps (the yes/no judge, the PRM, the step-writing policy, two reward models), then
// every RL config of configs/judges/ validates and trains 20 steps with them, from a working
// directory where their `runs/...` paths resolve as they do for a user. Checked: the runs finish,
// every metric is finite, and the judge stage scored judge prompts at every step (its figures in
// judge/<name>/... and perf/judge/<name>/tokens_per_s). Judges trained for 20 steps cannot pass the master-key self-test, so the RL runs
// set on_master_key: warn (the test still runs, and logs); the full chain trains judges that pass it.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "base/fs.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

std::string cfg_path(const std::string& name) {
  return (stdfs::path(KEEL_SOURCE_DIR) / "configs" / "judges" / (name + ".yaml")).string();
}

const char* kShort = " run.total_steps=20 run.threads=1 eval.num_prompts=4 eval.every=10";

class JudgeChainSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("judgechain");
    const std::vector<std::string> cmds = {
        "train " + cfg_path("yes_no_sft") + " run.total_steps=20 run.threads=1 eval.num_prompts=4",
        "train " + cfg_path("prm_sft") + " run.total_steps=20 run.threads=1 eval.num_prompts=4",
        "train " + cfg_path("pairwise_sft") + " run.total_steps=20 run.threads=1 eval.num_prompts=4",
        "train " + cfg_path("steps_sft") + " run.total_steps=20 run.threads=1 eval.num_prompts=4",
        "train-rm " + cfg_path("rm") + " run.total_steps=20 run.threads=1",
        "train-rm " + cfg_path("rm") + " run.total_steps=20 run.threads=1 run.name=judge_rm_b run.seed=2",
    };
    for (const auto& c : cmds) {
      const auto r = run_keel(c, dir_->path());
      if (r.exit_code != 0) {
        setup_error_ = c + "\n" + r.out;
        return;
      }
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static ScratchDir* dir_;
  static std::string setup_error_;
};
ScratchDir* JudgeChainSlow::dir_ = nullptr;
std::string JudgeChainSlow::setup_error_;

/// The RL configs of configs/judges/ (every one but the judges' own training configs).
std::vector<std::string> rl_configs() {
  std::vector<std::string> out;
  for (const auto& e : stdfs::directory_iterator(stdfs::path(KEEL_SOURCE_DIR) / "configs" / "judges")) {
    const std::string n = e.path().stem().string();
    if (e.path().extension() != ".yaml" || n == "rm" || (n.size() > 4 && n.substr(n.size() - 4) == "_sft")) continue;
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(JudgeChainSlow, EveryRlConfigValidatesAndTrainsTwentyStepsWithItsJudges) {
  const auto names = rl_configs();
  ASSERT_GE(names.size(), 12u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const std::string text = fs::read_file(cfg_path(name));
    // Short-trained judges and policies: their last checkpoints are step 20, and they warn on the
    // master-key self-test instead of refusing.
    // The judges this config lists, in order, by name and type.
    std::vector<std::string> judges, types;
    const std::regex judge_re(R"(- (?:\{)?name: ([a-z0-9_]+)[,\s]+type: ([a-z0-9_]+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), judge_re); it != std::sregex_iterator(); ++it) {
      judges.push_back((*it)[1]);
      types.push_back((*it)[2]);
    }
    std::smatch run_name;
    ASSERT_TRUE(std::regex_search(text, run_name, std::regex(R"(run: \{name: ([a-z0-9_]+))")));
    std::string over;
    if (text.find("path: runs/steps_sft/") != std::string::npos)
      over += " model.path=runs/steps_sft/checkpoints/step-00000020/policy";
    if (text.find("path: runs/judge_yes_no/checkpoints") != std::string::npos)
      over += " model.path=runs/judge_yes_no/checkpoints/step-00000020/policy";
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == "yes_no" || types[i] == "prm" || types[i] == "pairwise") over += " reward.judges." + std::to_string(i) + ".params.on_master_key=warn";
    if (text.find("scheme: generative_yes") != std::string::npos) over += " reward.components.1.params.on_master_key=warn";
    const auto v = run_keel("validate " + cfg_path(name) + over, dir_->path());
    ASSERT_EQ(v.exit_code, 0) << v.out;
    // Under the config's own run name: a later chain may use this run as its judge (grm -> uncertainty_kl).
    const auto r = run_keel("train " + cfg_path(name) + over + kShort, dir_->path());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto m = json_file_lines(dir_->path() / "runs" / run_name[1].str() / "metrics.jsonl");
    ASSERT_EQ(m.size(), 20u) << r.out;
    if (text.find("judges:") != std::string::npos) {
      ASSERT_FALSE(judges.empty()) << "no judge names parsed";
    }
    for (const auto& line : m) {
      for (const auto& [k, val] : line.items())
        if (val.is_number_float()) {
          EXPECT_TRUE(std::isfinite(val.get<double>())) << k;
        }
      for (const auto& j : judges) {
        const std::string p = "judge/" + j + "/";
        ASSERT_TRUE(line.contains(p + "prompts")) << line.dump();
        EXPECT_GT(line[p + "prompts"].get<double>(), 0);
        EXPECT_GT(line["perf/judge/" + j + "/tokens_per_s"].get<double>(), 0);
        EXPECT_EQ(line[p + "invalid"].get<double>(), 0);
        EXPECT_EQ(line[p + "timeouts"].get<double>(), 0);
      }
    }
  }
}

TEST_F(JudgeChainSlow, ValidateRefusesAJudgeConsumerWithoutItsJudge) {
  // rubric without the judge stage: its criterion_scores have no producer, and the error says which
  // judge would produce them.
  const auto r = run_keel("validate " + cfg_path("rubric") + " 'reward.judges=[]'", dir_->path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("reward.components.1.params: reward scheme 'rubric' (component 'rubric') needs criterion_scores"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("type yes_no"), std::string::npos) << r.out;
  // prm's step scores come from a prm judge, not a yes_no one.
  const auto p = run_keel("validate " + cfg_path("prm") + " reward.judges.0.type=yes_no", dir_->path());
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.out.find("needs step_scores"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace keel::testing
