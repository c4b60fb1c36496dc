// Tests of rewards/models/reward_model.{h,cpp}: a tiny reward-model directory scored in batches
// equals a one-at-a-time reference, sigmoid normalisation, the causal-LM-without-score-head error,
// params checks with file:line, and the composite's start-up binding.
#include "rewards/models/reward_model.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/composite.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"
#include "trainer/config/config.h"

namespace keel::rewards {
namespace {

class RewardModelDir : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new models::testing::TempDir();
      tok_ = testing::make_judge_tokenizer(dir_->path() / "tok").release();
      models::HeadOptions heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
      models::Transformer rm(testing::tiny_for(*tok_), heads);
      models::testing::randomize(rm, 21);
      testing::save_with_tokenizer(rm, dir_->path() / "rm", dir_->path() / "tok");
      models::Transformer lm(testing::tiny_for(*tok_));
      testing::save_with_tokenizer(lm, dir_->path() / "lm", dir_->path() / "tok");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static std::string path(const std::string& name) { return (dir_->path() / name).string(); }

  static RewardInput input() {
    RewardInput in;
    in.prompts = {"Question: What is 3 + 4?", "Question: What is 10 + 5?", "Q", "Question: What is 1 + 1?",
                  "Question: What is 2 + 9?"};
    in.responses = {" Response: 7", " Response: 16", "", " Response: 2 is the response", " 11"};
    in.group_ids = torch::tensor({0, 0, 1, 1, 2}, torch::kLong);
    return in;
  }

  static models::testing::TempDir* dir_;
  static models::Tokenizer* tok_;
  static std::string setup_error_;
};
models::testing::TempDir* RewardModelDir::dir_ = nullptr;
models::Tokenizer* RewardModelDir::tok_ = nullptr;
std::string RewardModelDir::setup_error_;

TEST_F(RewardModelDir, BatchedScoresMatchOneAtATime) {
  RewardModelOptions o;
  o.path = path("rm");
  o.batch_size = 2;
  RewardModelScheme s(o, "rm");
  s.bind({});
  const auto in = input();
  const auto out = s.score(in);
  ASSERT_EQ(out.rewards.sizes(), torch::IntArrayRef({5}));
  EXPECT_EQ(out.rewards.scalar_type(), torch::kFloat);
  // Reference: prompt ids (with BOS) ++ response ids, alone through the model, score head at the end.
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  auto m = models::load_pretrained(o.path, reg);
  ASSERT_TRUE(m.heads().reward_head);
  ASSERT_FALSE(m.heads().lm_head);
  torch::NoGradGuard ng;
  for (int64_t i = 0; i < in.size(); ++i) {
    auto ids = tok_->encode(in.prompts[static_cast<size_t>(i)], true);
    ASSERT_EQ(ids.front(), tok_->bos_id());
    const auto r = tok_->encode(in.responses[static_cast<size_t>(i)], false);
    ids.insert(ids.end(), r.begin(), r.end());
    EXPECT_EQ(reward_model_sequence(*tok_, in.prompts[static_cast<size_t>(i)], in.responses[static_cast<size_t>(i)], 0), ids);
    const auto h = m.forward_hidden(torch::tensor(ids, torch::kLong).unsqueeze(0));
    const double want = m.rewards(h)[0][-1].item<double>();
    EXPECT_NEAR(out.rewards[i].item<double>(), want, 1e-5) << i;
  }
  EXPECT_TRUE(torch::equal(out.detail.at("raw"), out.rewards));
  EXPECT_NEAR(out.metrics.at("rm/raw_mean"), out.rewards.mean().item<double>(), 1e-6);
  // The scores differ between samples (a constant would hide a broken read-out).
  EXPECT_GT((out.rewards.max() - out.rewards.min()).item<double>(), 1e-4);
}

TEST_F(RewardModelDir, SigmoidNormalisation) {
  RewardModelOptions o;
  o.path = path("rm");
  o.normalize = "sigmoid";
  RewardModelScheme s(o, "rm");
  const auto out = s.score(input());
  EXPECT_TRUE(torch::allclose(out.rewards, torch::sigmoid(out.detail.at("raw"))));
  EXPECT_GT(out.rewards.min().item<double>(), 0.0);
  EXPECT_LT(out.rewards.max().item<double>(), 1.0);
}

TEST_F(RewardModelDir, LeftTruncationKeepsTheEnd) {
  const auto full = reward_model_sequence(*tok_, "Question: What is 3 + 4?", " Response: 7", 0);
  const auto cut = reward_model_sequence(*tok_, "Question: What is 3 + 4?", " Response: 7", 4);
  ASSERT_EQ(cut.size(), 4u);
  EXPECT_TRUE(std::equal(cut.begin(), cut.end(), full.end() - 4));
}

TEST_F(RewardModelDir, ACausalLmWithoutScoreHeadIsAnError) {
  RewardModelOptions o;
  o.path = path("lm");
  RewardModelScheme s(o, "rm");
  try {
    s.bind({});
    FAIL() << "loaded a reward model without a score head";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no score.weight"), std::string::npos) << e.what();
  }
}

std::string params_errors(const std::string& yaml) {
  config::Node node = config::parse_yaml_string(yaml, "p.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, "reward.components.1.params", diag);
  RewardModelOptions o;
  read_reward_model_options(r, o);
  r.finish();
  std::string all;
  for (const auto& e : diag.errors()) all += e + "\n";
  return all;
}

TEST_F(RewardModelDir, ParamsAreValidatedWithFileAndLine) {
  EXPECT_EQ(params_errors("path: " + path("rm") + "\nbatch_size: 4\nnormalize: sigmoid\n"), "");
  const std::string e = params_errors("path: /nonexistent/rm\nbatch_size: 0\nnormalize: zscore\n");
  EXPECT_NE(e.find("p.yaml:1: reward.components.1.params.path: '/nonexistent/rm' has no config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:2: reward.components.1.params.batch_size: must be >= 1, got 0"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:3: reward.components.1.params.normalize"), std::string::npos) << e;
  EXPECT_NE(params_errors("{}\n").find("path: missing required key"), std::string::npos);
}

TEST_F(RewardModelDir, CompositeBindsAtStartUpAndScores) {
  RewardRegistry reg("reward scheme");
  register_builtin_reward_models(reg);
  config::Node root = config::parse_yaml_string(
      "reward:\n  components:\n    - {scheme: reward_model, name: rm, params: {path: '" + path("rm") + "', batch_size: 3}}\n",
      "r.yaml");
  config::Diagnostics diag;
  config::Reader r(&root, "", diag);
  config::KnownNames known;
  known.reward_schemes = reg.names();
  known.reward_params = [&](config::Reader& p, const std::string& scheme) { validate_reward_params(reg, p, scheme); };
  config::RewardSection sec;
  r.section("reward", "", [&](config::Reader& s) { config::read_reward(s, sec, known); });
  r.finish();
  ASSERT_TRUE(diag.ok()) << diag.errors().front();
  auto c = build_composite_reward(sec, reg);
  const auto out = c->score(input());
  RewardModelOptions o;
  o.path = path("rm");
  RewardModelScheme direct(o, "rm");
  EXPECT_TRUE(torch::allclose(out.rewards, direct.score(input()).rewards, 1e-6, 1e-6));
  EXPECT_TRUE(out.metrics.count("reward/rm/rm/raw_mean"));
}

}  // namespace
}  // namespace keel::rewards
