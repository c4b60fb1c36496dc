// Tests of rewards/models/generative_judge.{h,cpp} (spec D5a, D5b): the worked P(yes) example, the
// probability against a loop reference over random logits, the prompt template, yes/no token
// resolution, batched judging against an unbatched reference, the master-key self-test refusing a
// judge that always says yes (and only warning with on_master_key: warn), and params checks.
#include "rewards/models/generative_judge.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/models/master_keys.h"
#include "rewards/models/sequence_scoring.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"

namespace keel::rewards {
namespace {

namespace stdfs = std::filesystem;

TEST(JudgeYesProbability, SpecD5aWorkedExample) {
  // ℓ_yes = 2, ℓ_no = 0 → two-way p = σ(2 − 0) = 1 / (1 + e^−2) = 0.8807971
  const auto logits = torch::tensor({{2.0, 0.0, 5.0}});  // id 0 yes, id 1 no, id 2 something else
  EXPECT_NEAR(judge_yes_probability(logits, {0}, {1}, JudgeNormalize::kTwoWay).item<double>(), 0.8807971, 1e-6);
  // Full-vocabulary softmax: e^2 / (e^2 + e^0 + e^5) = 7.389056 / 156.802215 = 0.0471234
  EXPECT_NEAR(judge_yes_probability(logits, {0}, {1}, JudgeNormalize::kSoftmax).item<double>(), 0.0471234, 1e-6);
  // Variants are summed (spec D5a (c)): yes = {0, 2} → (e^2 + e^5) / (e^2 + e^5 + e^0) = 155.802215 / 156.802215
  EXPECT_NEAR(judge_yes_probability(logits, {0, 2}, {1}, JudgeNormalize::kTwoWay).item<double>(), 0.9936225, 1e-6);
}

double yes_prob_ref(const std::vector<double>& l, const std::vector<int64_t>& yes, const std::vector<int64_t>& no,
                    bool two_way) {
  double p_yes = 0, p_no = 0, z = 0;
  for (double x : l) z += std::exp(x);
  for (auto i : yes) p_yes += std::exp(l[static_cast<size_t>(i)]);
  for (auto i : no) p_no += std::exp(l[static_cast<size_t>(i)]);
  return two_way ? p_yes / (p_yes + p_no) : p_yes / z;
}

TEST(JudgeYesProbability, MatchesLoopReferenceOverRandomLogits) {
  for (int seed = 0; seed < 60; ++seed) {
    std::mt19937 gen(seed);
    const int n = 1 + seed % 5, v = 4 + seed % 9;  // v >= ny + nn
    std::normal_distribution<double> nd(0.0, seed % 4 == 0 ? 8.0 : 2.0);
    std::vector<int64_t> ids(static_cast<size_t>(v));
    for (int i = 0; i < v; ++i) ids[static_cast<size_t>(i)] = i;
    std::shuffle(ids.begin(), ids.end(), gen);
    const size_t ny = 1 + static_cast<size_t>(seed) % 2, nn = 1 + static_cast<size_t>(seed / 2) % 2;
    const std::vector<int64_t> yes(ids.begin(), ids.begin() + static_cast<long>(ny));
    const std::vector<int64_t> no(ids.begin() + static_cast<long>(ny), ids.begin() + static_cast<long>(ny + nn));
    auto logits = torch::empty({n, v}, torch::kDouble);
    std::vector<std::vector<double>> rows(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < v; ++j) {
        rows[static_cast<size_t>(i)].push_back(nd(gen));
        logits[i][j] = rows[static_cast<size_t>(i)].back();
      }
    for (bool two_way : {true, false}) {
      const auto got = judge_yes_probability(logits, yes, no, two_way ? JudgeNormalize::kTwoWay : JudgeNormalize::kSoftmax);
      for (int i = 0; i < n; ++i)
        EXPECT_NEAR(got[i].item<double>(), yes_prob_ref(rows[static_cast<size_t>(i)], yes, no, two_way), 1e-5)
            << "seed " << seed << " row " << i << " two_way " << two_way;
    }
  }
}

TEST(JudgeYesProbability, RejectsBadIds) {
  const auto logits = torch::zeros({2, 4});
  EXPECT_THROW(judge_yes_probability(logits, {}, {1}, JudgeNormalize::kTwoWay), c10::Error);
  EXPECT_THROW(judge_yes_probability(logits, {0}, {}, JudgeNormalize::kTwoWay), c10::Error);
  EXPECT_THROW(judge_yes_probability(logits, {4}, {1}, JudgeNormalize::kTwoWay), c10::Error);
  EXPECT_THROW(judge_yes_probability(logits, {1}, {1}, JudgeNormalize::kTwoWay), c10::Error);
  EXPECT_NO_THROW(judge_yes_probability(logits, {0}, {}, JudgeNormalize::kSoftmax));
}

TEST(JudgePrompt, ReplacesPlaceholdersInOnePass) {
  EXPECT_EQ(render_judge_prompt("Q: {prompt} R: {response} A: {answer} {other}", "2+2?", "4", "4"),
            "Q: 2+2? R: 4 A: 4 {other}");
  // A response that contains a placeholder stays literal.
  EXPECT_EQ(render_judge_prompt("{prompt}|{response}", "p", "{prompt}", ""), "p|{prompt}");
  EXPECT_EQ(render_judge_prompt("{response}{response}", "", "ab", ""), "abab");
}

// ---- with model directories ------------------------------------------------------------------------

class JudgeModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new models::testing::TempDir();
      tok_ = testing::make_judge_tokenizer(dir_->path() / "tok").release();
      yes_ = tok_->piece_to_id("\xE2\x96\x81yes");
      no_ = tok_->piece_to_id("\xE2\x96\x81no");
      models::Transformer random_judge(testing::tiny_for(*tok_));
      models::testing::randomize(random_judge, 5);
      testing::save_with_tokenizer(random_judge, dir_->path() / "random", dir_->path() / "tok");
      testing::save_with_tokenizer(testing::constant_judge(*tok_, yes_, 0.5), dir_->path() / "always_yes",
                                   dir_->path() / "tok");
      testing::save_with_tokenizer(testing::constant_judge(*tok_, no_, 0.5), dir_->path() / "always_no",
                                   dir_->path() / "tok");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static GenerativeJudgeOptions options(const std::string& model) {
    GenerativeJudgeOptions o;
    o.path = (dir_->path() / model).string();
    return o;
  }

  static models::testing::TempDir* dir_;
  static models::Tokenizer* tok_;
  static int64_t yes_, no_;
  static std::string setup_error_;
};
models::testing::TempDir* JudgeModels::dir_ = nullptr;
models::Tokenizer* JudgeModels::tok_ = nullptr;
int64_t JudgeModels::yes_ = -1;
int64_t JudgeModels::no_ = -1;
std::string JudgeModels::setup_error_;

TEST_F(JudgeModels, YesAndNoVariantsResolveToSingleTokens) {
  ASSERT_NE(yes_, models::kNoToken);
  ASSERT_NE(no_, models::kNoToken);
  // "yes" (dummy prefix → "▁yes") is one token; " yes" is two ("▁", "▁yes") and is skipped.
  EXPECT_EQ(single_token_ids(*tok_, {" yes", "yes"}, "yes_tokens", "w"), (std::vector<int64_t>{yes_}));
  try {
    single_token_ids(*tok_, {"definitely"}, "yes_tokens", "reward.components.0.params.yes_tokens");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("reward.components.0.params.yes_tokens: none of the yes_tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"definitely\" ->"), std::string::npos) << msg;
  }
}

TEST_F(JudgeModels, BatchedJudgingMatchesAnUnbatchedReference) {
  auto o = options("random");
  o.robustness_suite = "none";
  o.batch_size = 2;
  GenerativeJudge judge(o, "judge");
  judge.bind({});
  EXPECT_FALSE(judge.false_positive_rate().has_value());
  const std::vector<std::string> prompts = {"What is 3 + 4?", "What is 10 + 5?", "What is 1 + 1?", "Q"};
  const std::vector<std::string> responses = {"7", "16", "", "a much longer response to pad the others"};
  RewardInput in;
  in.prompts = prompts;
  in.responses = responses;
  in.group_ids = torch::arange(4, torch::kLong);
  const auto out = judge.score(in);
  ASSERT_EQ(out.rewards.sizes(), torch::IntArrayRef({4}));
  // Reference: each judge prompt alone through the model, two-way P(yes) by hand.
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  auto m = models::load_pretrained(o.path, reg);
  torch::NoGradGuard ng;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto ids = tok_->encode(render_judge_prompt(o.prompt_template, prompts[i], responses[i], ""), true);
    const auto logits = m.forward(torch::tensor(ids, torch::kLong).unsqueeze(0))[0][-1];  // [V]
    const double want = 1.0 / (1.0 + std::exp(-(logits[yes_].item<double>() - logits[no_].item<double>())));
    EXPECT_NEAR(out.rewards[static_cast<int64_t>(i)].item<double>(), want, 1e-5) << i;
  }
  EXPECT_NEAR(out.metrics.at("judge/p_yes_mean"), out.rewards.mean().item<double>(), 1e-9);
  // Same scores in one batch of 4 and one by one.
  for (int64_t bs : {1, 4}) {
    auto ob = o;
    ob.batch_size = bs;
    GenerativeJudge j(ob, "judge");
    EXPECT_TRUE(torch::allclose(j.score(in).rewards, out.rewards, 1e-5, 1e-6)) << bs;
  }
}

TEST_F(JudgeModels, AJudgeThatAlwaysSaysYesIsRefused) {
  GenerativeJudge judge(options("always_yes"), "reward.components.0.params");
  try {
    judge.bind({});
    FAIL() << "the always-yes judge was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("reward.components.0.params: generative judge"), std::string::npos) << msg;
    EXPECT_NE(msg.find("master key"), std::string::npos) << msg;
    const size_t n = master_key_suite().size();
    EXPECT_NE(msg.find(std::to_string(n) + " of " + std::to_string(n) + " suite cases"), std::string::npos) << msg;
    EXPECT_NE(msg.find("response \""), std::string::npos) << msg;  // names an input ...
    EXPECT_NE(msg.find("scored 1.0000"), std::string::npos) << msg;  // ... and its score
    EXPECT_NE(msg.find("on_master_key: warn"), std::string::npos) << msg;
  }
}

TEST_F(JudgeModels, WarnModeBindsAndRecordsTheRate) {
  auto o = options("always_yes");
  o.refuse = false;
  GenerativeJudge judge(o, "judge");
  ASSERT_NO_THROW(judge.bind({}));
  ASSERT_TRUE(judge.false_positive_rate().has_value());
  EXPECT_DOUBLE_EQ(*judge.false_positive_rate(), 1.0);
  RewardInput in;
  in.prompts = {"What is 2 + 2?"};
  in.responses = {""};
  in.group_ids = torch::zeros({1}, torch::kLong);
  const auto out = judge.score(in);
  EXPECT_GT(out.rewards[0].item<double>(), 0.99);  // logit gap 0.5 · 32 = 16: σ(16)
  EXPECT_DOUBLE_EQ(out.metrics.at("judge/master_key_fp_rate"), 1.0);
}

TEST_F(JudgeModels, AJudgeThatSaysNoPassesTheSelfTest) {
  GenerativeJudge judge(options("always_no"), "judge");
  ASSERT_NO_THROW(judge.bind({}));
  ASSERT_TRUE(judge.false_positive_rate().has_value());
  EXPECT_DOUBLE_EQ(*judge.false_positive_rate(), 0.0);
}

TEST_F(JudgeModels, AnswerPlaceholderNeedsMetadata) {
  auto o = options("random");
  o.robustness_suite = "none";
  o.prompt_template = "Q: {prompt} Gold: {answer} R: {response} Answer:";
  GenerativeJudge judge(o, "judge");
  RewardInput in;
  in.prompts = {"What is 2 + 2?"};
  in.responses = {"4"};
  in.group_ids = torch::zeros({1}, torch::kLong);
  EXPECT_THROW(judge.score(in), c10::Error);  // no metadata "answer"
  in.metadata = {nlohmann::json{{"answer", 4}}};
  const auto with = judge.score(in).rewards;
  const auto want = judge.judge({"What is 2 + 2?"}, {"4"}, {"4"});
  EXPECT_TRUE(torch::allclose(with, want));
}

/// The factory's params errors, collected like the config loader does.
std::string params_errors(const std::string& yaml) {
  config::Node node = config::parse_yaml_string(yaml, "p.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, "reward.components.0.params", diag);
  GenerativeJudgeOptions o;
  read_generative_judge_options(r, o);
  r.finish();
  std::string all;
  for (const auto& e : diag.errors()) all += e + "\n";
  return all;
}

TEST_F(JudgeModels, ParamsAreValidatedWithFileAndLine) {
  EXPECT_EQ(params_errors("path: " + (dir_->path() / "random").string() + "\n"), "");
  const std::string e = params_errors(
      "path: /nonexistent/judge\ntemplate: 'no response here'\nnormalize: three_way\non_master_key: ignore\n"
      "max_false_positive: 2\nbogus: 1\n");
  EXPECT_NE(e.find("p.yaml:1: reward.components.0.params.path: '/nonexistent/judge' has no config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:2: reward.components.0.params.template: must contain {response}"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:3: reward.components.0.params.normalize"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:4: reward.components.0.params.on_master_key"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:5: reward.components.0.params.max_false_positive: must be <= 1"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:6: reward.components.0.params.bogus"), std::string::npos) << e;
  EXPECT_NE(params_errors("batch_size: 2\n").find("path: missing required key"), std::string::npos);
}

TEST_F(JudgeModels, RegisteredUnderTheSpecName) {
  RewardRegistry reg("reward scheme");
  register_builtin_reward_models(reg);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"generative_yes", "reward_model"}));
  for (const auto& n : reg.names()) EXPECT_FALSE(reg.get(n).description.empty()) << n;
  // The factory reads params only: building (as `keel validate` does) loads nothing and runs no suite.
  config::Node node = config::parse_yaml_string("path: " + (dir_->path() / "always_yes").string() + "\n", "p.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, "params", diag);
  auto s = reg.get("generative_yes").fn(r);
  r.finish();
  EXPECT_TRUE(diag.ok());
  EXPECT_THROW(s->bind({}), Error);  // ... the self-test runs at bind (start-up)
}

}  // namespace
}  // namespace keel::rewards
