// Tests of the judge stage (rewards/judges/): each built-in judge type against a reference computed
// with the generative judge / reward model directly (batched vs one-by-one), the outputs' shapes
// and masks, criteria from the records, thresholded verdicts, the documented fallbacks for
// non-finite scores and deadlines (counted in metrics), the master-key self-test per criterion,
// step segmentation of the prm judge on the policy's tokens, params errors at their YAML key, and
// a CompositeReward whose rubric / prm components read what its judges wrote.
#include "rewards/judges/judge.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"
#include "rewards/composite.h"
#include "rewards/models/generative_judge.h"
#include "rewards/models/reward_model.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "tests/models/test_util.h"
#include "tests/rewards/models/model_dir_fixture.h"
#include "tests/rewards/reward_test_util.h"

namespace keel::rewards {
namespace {

namespace stdfs = std::filesystem;

class JudgeStage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new models::testing::TempDir();
      tok_ = testing::make_judge_tokenizer(dir_->path() / "tok").release();
      const auto yes = tok_->piece_to_id("\xE2\x96\x81yes");
      models::Transformer random_judge(testing::tiny_for(*tok_));
      models::testing::randomize(random_judge, 5);
      testing::save_with_tokenizer(random_judge, dir_->path() / "random", dir_->path() / "tok");
      testing::save_with_tokenizer(testing::constant_judge(*tok_, yes, 0.5), dir_->path() / "always_yes",
                                   dir_->path() / "tok");
      models::Transformer nan_judge(testing::tiny_for(*tok_));
      {
        torch::NoGradGuard ng;
        for (auto& [name, p] : nan_judge.named_parameters()) p.fill_(std::nan(""));
      }
      testing::save_with_tokenizer(nan_judge, dir_->path() / "nan", dir_->path() / "tok");
      models::HeadOptions heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
      models::Transformer rm(testing::tiny_for(*tok_), heads);
      models::testing::randomize(rm, 21);
      testing::save_with_tokenizer(rm, dir_->path() / "rm", dir_->path() / "tok");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::string path(const std::string& m) { return (dir_->path() / m).string(); }

  /// gold_answer's log-probs of row 0 (`lp` [N, S + 1, L]) equal the "random" model's, each context
  /// (`prompt` + prefix t) scored alone, then `gold` (separator and answer).
  static void expect_gold_logprobs(const at::Tensor& lp, const std::string& prompt, const std::vector<std::string>& prefixes,
                                   const std::string& gold_text) {
    auto model = models::load_pretrained(path("random"), [] {
      models::ModelRegistry reg("model family");
      models::register_builtin_models(reg);
      return reg;
    }());
    torch::NoGradGuard ng;
    const auto gold = tok_->encode(gold_text, /*add_special=*/false);
    for (size_t t = 0; t < prefixes.size(); ++t) {
      const auto ctx = tok_->encode(prompt + prefixes[t], /*add_special=*/true);
      const auto out = models::sequence_logprobs(model, torch::tensor(ctx).unsqueeze(0), torch::ones({1, static_cast<int64_t>(ctx.size())}, torch::kLong),
                                                 torch::tensor(gold).unsqueeze(0), torch::ones({1, static_cast<int64_t>(gold.size())}, torch::kLong));
      for (size_t k = 0; k < gold.size(); ++k)
        EXPECT_NEAR(lp[0][static_cast<int64_t>(t)][static_cast<int64_t>(k)].item<double>(),
                    out.logprobs[0][static_cast<int64_t>(k)].item<double>(), 1e-4)
            << "turn " << t << " token " << k;
    }
  }

  /// Builds a judge of `type` from a params YAML flow map; throws the collected errors.
  static BuiltJudge make(const std::string& type, const std::string& params_yaml, const std::string& name = "j") {
    config::Node root = config::parse_yaml_string("params: " + params_yaml + "\n", "judge.yaml");
    config::Diagnostics diag;
    config::Reader top(&root, "", diag);
    BuiltJudge b;
    top.section("params", "", [&](config::Reader& r) { b = build_judge(builtin_judges(), r, type, name); });
    top.finish();
    diag.throw_if_any();
    JudgeContext ctx;
    ctx.policy_tokenizer = tok_;
    b.impl->bind(ctx);
    return b;
  }

  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }

  /// A batch of two groups of three responses to arithmetic questions.
  static RewardInput batch() {
    RewardInput in;
    in.prompts = {"Question: What is 3 + 4?", "Question: What is 3 + 4?", "Question: What is 3 + 4?",
                  "Question: What is 12 + 7?", "Question: What is 12 + 7?", "Question: What is 12 + 7?"};
    in.responses = {"7", "8", "Response: 7 yes", "19", "20 no", "1"};
    in.group_ids = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong);
    for (const char* a : {"7", "7", "7", "19", "19", "19"}) in.metadata.push_back({{"answer", a}});
    return in;
  }

  static models::testing::TempDir* dir_;
  static models::Tokenizer* tok_;
  static std::string setup_error_;
};
models::testing::TempDir* JudgeStage::dir_ = nullptr;
models::Tokenizer* JudgeStage::tok_ = nullptr;
std::string JudgeStage::setup_error_;

TEST_F(JudgeStage, YesNoCriteriaMatchTheGenerativeJudgeOneByOne) {
  const std::string tmpl = "{prompt} Response: {response} {criterion}? Answer:";
  auto j = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, batch_size: 4, template: '" + tmpl +
                              "', criteria: [Is the response correct, Is the response short]}");
  EXPECT_EQ(j.impl->produces(), std::vector<std::string>{"criterion_scores"});
  RewardInput in = batch();
  const JudgeStats st = j.impl->run(in);
  ASSERT_TRUE(in.criterion_scores.defined());
  ASSERT_EQ(in.criterion_scores.sizes(), (torch::IntArrayRef{6, 2}));
  EXPECT_TRUE(in.criterion_mask.all().item<bool>());
  EXPECT_EQ(st.prompts, 12);
  EXPECT_GT(st.tokens, 12 * 5);
  EXPECT_EQ(st.invalid, 0);
  // Reference: the same model as a generative judge, one text at a time.
  GenerativeJudgeOptions o;
  o.path = path("random");
  o.robustness_suite = "none";
  o.batch_size = 1;
  GenerativeJudge ref(o, "ref");
  const std::vector<std::string> crit = {"Is the response correct", "Is the response short"};
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t k = 0; k < 2; ++k) {
      const auto text = render_judge_prompt(tmpl, in.prompts[static_cast<size_t>(i)], in.responses[static_cast<size_t>(i)],
                                            "", crit[static_cast<size_t>(k)]);
      EXPECT_NEAR(in.criterion_scores[i][k].item<double>(), ref.judge_texts({text}).item<double>(), 1e-5)
          << "row " << i << " criterion " << k;
    }
  // A random judge's per-criterion scores differ within a group.
  EXPECT_GT((in.criterion_scores.slice(0, 0, 3) - in.criterion_scores.slice(0, 0, 3).mean(0)).abs().max().item<double>(), 1e-4);
}

TEST_F(JudgeStage, CriteriaFromTheRecordsAreMaskedPerSample) {
  auto j = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, criteria_key: rubric}");
  RewardInput in = batch();
  for (int64_t i = 0; i < 6; ++i) {
    nlohmann::json list = nlohmann::json::array({"is the answer correct"});
    if (i % 2 == 0) list.push_back({{"criterion", "is it short"}, {"weight", 2}});
    if (i == 0) list.push_back({{"text", "is it polite"}});
    in.metadata[static_cast<size_t>(i)]["rubric"] = list;
  }
  j.impl->run(in);
  ASSERT_EQ(in.criterion_scores.sizes(), (torch::IntArrayRef{6, 3}));
  const auto m = in.criterion_mask;
  EXPECT_EQ(m.sum().item<int64_t>(), 1 + 3 + 3 * 2);  // rows 0: 3, 2 and 4: 2, odd rows: 1
  EXPECT_TRUE(m[0].all().item<bool>());
  EXPECT_FALSE(m[1][1].item<bool>());
  // A record whose criteria are not a list is an error naming the sample and key.
  in.metadata[3]["rubric"] = 5;
  const auto e = error_of([&] { j.impl->run(in); });
  EXPECT_NE(e.find("'rubric' of sample 3"), std::string::npos) << e;
}

TEST_F(JudgeStage, ThresholdWritesVerdictsIntoExtra) {
  auto j = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, output: extra.judge_correct, threshold: 0.5}");
  EXPECT_EQ(j.impl->produces(), std::vector<std::string>{"extra.judge_correct"});
  RewardInput in = batch();
  j.impl->run(in);
  ASSERT_TRUE(in.extra.count("judge_correct"));
  const auto v = in.extra.at("judge_correct");
  ASSERT_EQ(v.sizes(), (torch::IntArrayRef{6}));
  EXPECT_TRUE((v.eq(0) | v.eq(1)).all().item<bool>());
  auto p = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, output: rm_scores}");
  RewardInput in2 = batch();
  p.impl->run(in2);
  EXPECT_TRUE(torch::equal(v, in2.rm_scores.gt(0.5).to(torch::kFloat)));
}

TEST_F(JudgeStage, NonFiniteScoresTakeTheFallbackAndAreCounted) {
  auto j = make("yes_no", "{path: " + path("nan") + ", robustness_suite: none, fallback: 0.25}");
  RewardInput in = batch();
  const JudgeStats st = j.impl->run(in);
  EXPECT_EQ(st.invalid, 6);
  EXPECT_TRUE(torch::allclose(in.criterion_scores, torch::full({6, 1}, 0.25f)));
  EXPECT_FALSE(in.criterion_mask.any().item<bool>());
}

TEST_F(JudgeStage, PromptsPastTheDeadlineTakeTheFallback) {
  // A deadline already past after the first batch: the other five prompts are not judged.
  auto j = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, batch_size: 1, timeout_s: 1.0e-9, fallback: 0.5}");
  RewardInput in = batch();
  const JudgeStats st = j.impl->run(in);
  EXPECT_EQ(st.timeouts, 5);
  EXPECT_TRUE(torch::allclose(in.criterion_scores.slice(0, 1), torch::full({5, 1}, 0.5f)));
  EXPECT_EQ(in.criterion_mask.sum().item<int64_t>(), 1);
}

TEST_F(JudgeStage, MasterKeySuiteRefusesAJudgeThatAlwaysSaysYesUnderAnyCriterion) {
  const auto e = error_of([&] {
    make("yes_no", "{path: " + path("always_yes") + ", criteria: [is it right, is it short]}");
  });
  EXPECT_NE(e.find("master key"), std::string::npos) << e;
  EXPECT_NE(e.find("under template"), std::string::npos) << e;
}

TEST_F(JudgeStage, ParamsErrorsNameTheirKey) {
  const auto bad_field = error_of([&] { make("yes_no", "{path: " + path("random") + ", template: '{prompt}{response}{critrion}'}"); });
  EXPECT_NE(bad_field.find("params.template"), std::string::npos) << bad_field;
  EXPECT_NE(bad_field.find("unknown field {critrion}"), std::string::npos) << bad_field;
  const auto no_crit = error_of([&] { make("yes_no", "{path: " + path("random") + ", template: '{prompt}{response}', criteria: [a, b]}"); });
  EXPECT_NE(no_crit.find("need {criterion}"), std::string::npos) << no_crit;
  const auto out = error_of([&] { make("yes_no", "{path: " + path("random") + ", output: step_scores}"); });
  EXPECT_NE(out.find("params.output"), std::string::npos) << out;
  const auto rm_many = error_of([&] { make("yes_no", "{path: " + path("random") + ", output: rm_scores, criteria: [a, b]}"); });
  EXPECT_NE(rm_many.find("exactly one criterion"), std::string::npos) << rm_many;
  const auto no_dir = error_of([&] { make("prm", "{path: /nonexistent}"); });
  EXPECT_NE(no_dir.find("has no config.json"), std::string::npos) << no_dir;
}

TEST_F(JudgeStage, RequirementsAndOutputsAreDeclaredWithoutLoading) {
  RewardSpec sec;
  JudgeSpec js;
  js.type = "yes_no";
  js.name = "truth";
  js.params = config::parse_yaml_string("{path: " + path("random") + ", template: '{prompt}{response}{answer}', criteria_key: rubric}", "x");
  js.params_path = "reward.judges.0.params";
  sec.judges.push_back(js);
  const auto c = judge_contracts(sec);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].produces, std::vector<std::string>{"criterion_scores"});
  std::vector<std::string> needs;
  for (const auto& r : c[0].contract) needs.push_back(r.input + "@" + r.key);
  EXPECT_EQ(needs, (std::vector<std::string>{"meta.rubric@reward.judges.0.params.criteria_key",
                                             "meta.answer@reward.judges.0.params.template"}));
}

TEST_F(JudgeStage, PrmCutsStepsOnThePolicysTokensAndScoresEachPrefix) {
  const std::string tmpl = "{prompt} {response} Is the response correct? Answer:";
  // The judge tokenizer doubles as the policy's here; "+" ends a step (a token of its vocabulary).
  auto j = make("prm", "{path: " + path("random") + ", robustness_suite: none, batch_size: 3, delimiter: '+', template: '" + tmpl + "'}");
  EXPECT_EQ(j.impl->produces(), (std::vector<std::string>{"step_scores", "step_ends"}));
  RewardInput in = batch();
  in.responses = {"3 + 4 + 1", "7", "", "12 + 7", "19", "1 + 1"};
  const int64_t t_max = 12;
  in.response_tokens = torch::zeros({6, t_max}, torch::kLong);
  in.response_mask = torch::zeros({6, t_max}, torch::kBool);
  std::vector<std::vector<int64_t>> toks;
  for (int64_t i = 0; i < 6; ++i) {
    toks.push_back(tok_->encode(in.responses[static_cast<size_t>(i)], /*add_special=*/false));
    ASSERT_LE(static_cast<int64_t>(toks.back().size()), t_max);
    for (size_t t = 0; t < toks.back().size(); ++t) {
      in.response_tokens[i][static_cast<int64_t>(t)] = toks.back()[t];
      in.response_mask[i][static_cast<int64_t>(t)] = true;
    }
  }
  const JudgeStats st = j.impl->run(in);
  ASSERT_TRUE(in.step_scores.defined() && in.step_ends.defined());
  // Reference step ends: each token holding "+" ends a step, and the rest of the response is the last one.
  GenerativeJudgeOptions o;
  o.path = path("random");
  o.robustness_suite = "none";
  o.prompt_template = tmpl;
  GenerativeJudge ref(o, "ref");
  int64_t steps = 0;
  for (int64_t i = 0; i < 6; ++i) {
    std::vector<int64_t> ends;
    const auto& row = toks[static_cast<size_t>(i)];
    for (size_t t = 0; t < row.size(); ++t)
      if (tok_->id_to_bytes(row[t]).find('+') != std::string::npos) ends.push_back(static_cast<int64_t>(t));
    if (!row.empty() && (ends.empty() || ends.back() != static_cast<int64_t>(row.size()) - 1))
      ends.push_back(static_cast<int64_t>(row.size()) - 1);
    steps += static_cast<int64_t>(ends.size());
    for (int64_t s = 0; s < in.step_ends.size(1); ++s) {
      const int64_t got = in.step_ends[i][s].item<int64_t>();
      if (s >= static_cast<int64_t>(ends.size())) {
        EXPECT_EQ(got, -1) << "row " << i;
        EXPECT_FALSE(in.step_mask[i][s].item<bool>());
        continue;
      }
      EXPECT_EQ(got, ends[static_cast<size_t>(s)]) << "row " << i << " step " << s;
      const std::vector<int64_t> prefix(row.begin(), row.begin() + ends[static_cast<size_t>(s)] + 1);
      const auto p = ref.judge({in.prompts[static_cast<size_t>(i)]}, {tok_->decode(prefix, true)}, {""});
      EXPECT_NEAR(in.step_scores[i][s].item<double>(), p.item<double>(), 1e-5) << "row " << i << " step " << s;
    }
  }
  EXPECT_EQ(st.prompts, steps);
  EXPECT_FALSE(in.step_mask[2].any().item<bool>());  // the empty response has no step
}

TEST_F(JudgeStage, GoldAnswerLogprobsMatchOneSequenceAtATime) {
  auto j = make("gold_answer", "{path: " + path("random") + ", delimiter: '+', separator: ' Response: ', batch_size: 5}");
  EXPECT_EQ(j.impl->produces(), (std::vector<std::string>{"extra.gold_logprobs", "step_ends"}));
  RewardInput in = batch();
  in.responses = {"3 + 4 + 1", "7", "", "12 + 7", "19", "1 + 1"};
  in.response_tokens = torch::zeros({6, 12}, torch::kLong);
  in.response_mask = torch::zeros({6, 12}, torch::kBool);
  for (int64_t i = 0; i < 6; ++i) {
    const auto ids = tok_->encode(in.responses[static_cast<size_t>(i)], /*add_special=*/false);
    for (size_t t = 0; t < ids.size(); ++t) {
      in.response_tokens[i][static_cast<int64_t>(t)] = ids[t];
      in.response_mask[i][static_cast<int64_t>(t)] = true;
    }
  }
  const JudgeStats st = j.impl->run(in);
  const auto lp = in.extra.at("gold_logprobs");
  const auto gm = in.extra.at("gold_mask");
  const int64_t s1 = in.step_ends.size(1) + 1;
  ASSERT_EQ(lp.sizes(), (torch::IntArrayRef{6, s1, gm.size(1)}));
  EXPECT_EQ(st.prompts, 6 * s1);
  // Reference for row 0 (steps "3 +", "3 + 4 +", "3 + 4 + 1"): each context alone, then the answer.
  ASSERT_EQ(s1, 4);
  expect_gold_logprobs(lp, in.prompts[0], {"", "3 +", "3 + 4 +", "3 + 4 + 1"}, " Response: 7");
}

TEST_F(JudgeStage, GoldAnswerWithTurnsReadsEachTurnThroughItsObservation) {
  // A multi-turn row: policy turn "3 +", the observation " 4" (not the policy's), policy turn "1";
  // the turns end where the environment's rollout says (step_ends), and turn 1's context runs
  // through the observation that followed it.
  auto j = make("gold_answer", "{path: " + path("random") + ", turns: true, separator: ' Response: '}");
  RewardInput in = batch();
  const auto a = tok_->encode("3 +", false), b = tok_->encode(" 4", false), c = tok_->encode(" 1", false);
  std::vector<int64_t> ids = a;
  ids.insert(ids.end(), b.begin(), b.end());
  ids.insert(ids.end(), c.begin(), c.end());
  const auto n = static_cast<int64_t>(ids.size()), la = static_cast<int64_t>(a.size()), lb = static_cast<int64_t>(b.size());
  in.response_tokens = torch::tensor(ids, torch::kLong).unsqueeze(0).repeat({6, 1});
  in.response_mask = torch::ones({6, n}, torch::kBool);
  in.response_mask.slice(1, la, la + lb).fill_(false);
  in.extra["response_attention"] = torch::ones({6, n}, torch::kLong);
  in.step_ends = torch::tensor({la - 1, n - 1}, torch::kLong).unsqueeze(0).repeat({6, 1});
  j.impl->run(in);
  const auto lp = in.extra.at("gold_logprobs");
  ASSERT_EQ(lp.size(1), 3);
  EXPECT_TRUE(torch::equal(in.step_ends[0], torch::tensor({la - 1, n - 1}, torch::kLong)));
  const std::vector<int64_t> ab(ids.begin(), ids.begin() + la + lb);
  expect_gold_logprobs(lp, in.prompts[0], {"", tok_->decode(ab, true), tok_->decode(ids, true)}, " Response: 7");
  // Without turn ends (no environment) the judge says where they come from.
  RewardInput bare = batch();
  bare.response_tokens = in.response_tokens;
  bare.response_mask = in.response_mask;
  EXPECT_THROW(j.impl->run(bare), std::exception);
}

TEST_F(JudgeStage, PairwiseJudgeAsksEveryOrderedPairOfAGroup) {
  const std::string tmpl = "{prompt} A: {response} B: {other} Is the response correct? Answer:";
  auto j = make("pairwise", "{path: " + path("random") + ", robustness_suite: none, batch_size: 4, template: '" + tmpl + "'}");
  EXPECT_EQ(j.impl->produces(), std::vector<std::string>{"extra.openrs_scores"});
  RewardInput in = batch();
  in.group_ids = torch::tensor({0, 1, 0, 1, 0, 1}, torch::kLong);  // groups need not be contiguous
  const JudgeStats st = j.impl->run(in);
  EXPECT_EQ(st.prompts, 2 * 3 * 2);  // two groups of three: 3 x 2 ordered pairs each
  const auto sc = in.extra.at("openrs_scores");
  ASSERT_EQ(sc.sizes(), (torch::IntArrayRef{6, 3}));
  GenerativeJudgeOptions o;
  o.path = path("random");
  o.robustness_suite = "none";
  GenerativeJudge ref(o, "ref");
  const std::vector<std::vector<int64_t>> members = {{0, 2, 4}, {1, 3, 5}};
  for (int64_t i = 0; i < 6; ++i) {
    const auto& rows = members[static_cast<size_t>(i % 2)];
    for (size_t k = 0; k < 3; ++k) {
      const int64_t other = rows[k];
      const double got = sc[i][static_cast<int64_t>(k)].item<double>();
      if (other == i) {
        EXPECT_EQ(got, 0.0);  // a response against itself: a tie (signed 0)
        continue;
      }
      std::string text = tmpl;
      text.replace(text.find("{other}"), 7, in.responses[static_cast<size_t>(other)]);
      text.replace(text.find("{response}"), 10, in.responses[static_cast<size_t>(i)]);
      text.replace(text.find("{prompt}"), 8, in.prompts[static_cast<size_t>(i)]);
      EXPECT_NEAR(got, 2 * ref.judge_texts({text}).item<double>() - 1, 1e-5) << i << " vs " << other;
    }
  }
  const auto e = error_of([&] { make("pairwise", "{path: " + path("random") + ", template: '{prompt}{response}'}"); });
  EXPECT_NE(e.find("needs {other}"), std::string::npos) << e;
}

TEST_F(JudgeStage, ARunDirectoryResolvesToItsNewestCheckpointModel) {
  const auto run = dir_->path() / "run";
  for (const char* sub : {"checkpoints/step-00000002/policy", "checkpoints/step-00000010/model", "checkpoints/tmp-00000020/policy"}) {
    stdfs::create_directories(run / sub);
    stdfs::copy_file(dir_->path() / "random" / "config.json", run / sub / "config.json", stdfs::copy_options::overwrite_existing);
  }
  EXPECT_EQ(resolve_model_dir(run.string()), (run / "checkpoints/step-00000010/model").string());
  EXPECT_EQ(resolve_model_dir(path("random")), path("random"));
  EXPECT_EQ(resolve_model_dir((dir_->path() / "nothing").string()), "");
}

TEST_F(JudgeStage, RewardModelJudgeWritesTheScoreHead) {
  auto j = make("reward_model", "{path: " + path("rm") + ", output: extra.rm_scores_2, batch_size: 4}");
  RewardInput in = batch();
  j.impl->run(in);
  RewardModelOptions o;
  o.path = path("rm");
  RewardModelScheme ref(o, "ref");
  EXPECT_TRUE(torch::allclose(in.extra.at("rm_scores_2"), ref.raw_scores(in.prompts, in.responses), 1e-5, 1e-6));
}

TEST_F(JudgeStage, CompositeRunsItsJudgesBeforeTheComponents) {
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  register_builtin_reward_schemes(reg);
  const std::string yaml = "reward:\n  judges:\n    - {name: rubric_judge, type: yes_no, params: {path: " + path("random") +
                           ", robustness_suite: none, criteria: [is it right, is it short]}}\n"
                           "  components:\n    - {scheme: rubric}\n";
  auto c = build_composite_reward(testing::read_section(yaml), reg);
  const RewardOutput out = c->score(batch());
  ASSERT_EQ(out.rewards.sizes(), (torch::IntArrayRef{6}));
  // rubric with unit weights: the mean of the two criteria's P(yes).
  RewardInput in = batch();
  auto j = make("yes_no", "{path: " + path("random") + ", robustness_suite: none, criteria: [is it right, is it short]}");
  j.impl->run(in);
  EXPECT_TRUE(torch::allclose(out.rewards, in.criterion_scores.mean(1), 1e-5, 1e-6));
  EXPECT_EQ(out.metrics.at("judge/rubric_judge/prompts"), 12);
  EXPECT_GT(out.metrics.at("perf/judge/rubric_judge/tokens_per_s"), 0);
  EXPECT_TRUE(out.metrics.count("time/judge/rubric_judge_s"));
  EXPECT_EQ(out.metrics.at("judge/rubric_judge/invalid"), 0);
  EXPECT_TRUE(out.metrics.count("time/judge_s"));
  // An unknown judge type is an error at its key.
  const auto e = error_of([&] {
    build_composite_reward(
        testing::read_section("reward:\n  judges:\n    - {name: x, type: oracle}\n  components:\n    - {scheme: rubric}\n"), reg);
  });
  EXPECT_NE(e.find("reward.judges.0.type"), std::string::npos) << e;
}

}  // namespace
}  // namespace keel::rewards
