// Tests of CompositeReward and build_composite_reward: weighted sum, per-component metrics, prior
// rewards seen by later components, token rewards, state save/load, and config errors (unknown
// scheme, unknown / ill-typed params with file:line, duplicate names, default task verifier).
#include "rewards/composite.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "reward_test_util.h"
#include "rewards/verifiers/verifier.h"
#include "base/error.h"
#include "trainer/config/config.h"
#include "trainer/config/reward_config.h"

namespace keel::rewards {
namespace {

using nlohmann::json;

/// reward = scale · prior[source] (+ a running call count, checkpointed) — exercises prior and state.
class ScaledPrior : public RewardScheme {
 public:
  ScaledPrior(std::string source, double scale) : source_(std::move(source)), scale_(scale) {}
  RewardOutput score(const RewardInput& in) override {
    ++calls_;
    TORCH_CHECK(in.prior.count(source_), "ScaledPrior: no prior '", source_, "'");
    RewardOutput out;
    out.rewards = in.prior.at(source_) * static_cast<float>(scale_);
    out.metrics["calls"] = static_cast<double>(calls_);
    out.token_rewards = torch::ones({in.size(), 3}, torch::kFloat32);
    return out;
  }
  bool stateful() const override { return true; }
  void save_state(RewardState& out) const override { out["calls"] = torch::tensor(calls_, torch::kInt64); }
  void load_state(const RewardState& in) override {
    if (!in.count("calls")) fail("ScaledPrior: state has no 'calls'");
    calls_ = in.at("calls").item<int64_t>();
  }
  int64_t calls() const { return calls_; }

 private:
  std::string source_;
  double scale_;
  int64_t calls_ = 0;
};

RewardRegistry test_registry() {
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  reg.add("scaled_prior", "test: scale * an earlier component", [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
    std::string source = "accuracy";
    double scale = 1.0;
    r.required("source", source, "earlier component");
    r.field("scale", scale, "factor");
    return std::make_unique<ScaledPrior>(source, scale);
  });
  reg.add("slow_verifier", "test: sleeps 300 ms on 'slow', else 1", [](config::Reader&) -> std::unique_ptr<RewardScheme> {
    return std::make_unique<VerifierReward>("slow_verifier", [](std::string_view resp, const json&) {
      if (resp == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return 1.0;
    });
  });
  return reg;
}

using testing::read_section;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kTwoVerifiers = R"(reward:
  timeout_ms: 500
  fallback: -1
  components:
    - scheme: format_tags
      name: format
      weight: 0.5
    - scheme: math_answer
      name: accuracy
      weight: 2.0
)";

TEST(CompositeReward, ScorerLimitsComeFromTheRewardSection) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(R"(reward:
  max_bytes: 9
  max_stuck_workers: 3
  fallback: -1
  components:
    - {scheme: math_answer, name: accuracy}
)"), reg);
  EXPECT_EQ(c->scorer().options().max_bytes, 9);
  EXPECT_EQ(c->scorer().options().max_stuck_workers, 3);
  const json g = json{{"answer", "4"}};
  // "\boxed{4} " is 10 bytes > max_bytes 9: malformed, so the fallback -1 instead of 1; the
  // 9-byte "\boxed{4}" is scored (1).
  const RewardOutput out = c->score(testing::make_input({"\\boxed{4} ", "\\boxed{4}"}, {g, g}));
  EXPECT_FLOAT_EQ(out.rewards[0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(out.rewards[1].item<float>(), 1.0f);
  EXPECT_DOUBLE_EQ(out.metrics.at("scorer/malformed"), 1.0);
  // Defaults when the keys are absent, and range checks.
  auto d = build_composite_reward(read_section(kTwoVerifiers), reg);
  EXPECT_EQ(d->scorer().options().max_bytes, int64_t{1} << 20);
  EXPECT_EQ(d->scorer().options().max_stuck_workers, 64);
  const std::string err = error_of([] { read_section("reward:\n  max_bytes: 0\n  max_stuck_workers: 0\n"); });
  EXPECT_NE(err.find("reward.max_bytes: must be >= 1, got 0"), std::string::npos) << err;
  EXPECT_NE(err.find("reward.max_stuck_workers: must be >= 1, got 0"), std::string::npos) << err;
}

TEST(CompositeReward, WeightedSumAndMetrics) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(kTwoVerifiers), reg);
  ASSERT_EQ(c->components().size(), 2u);
  EXPECT_EQ(c->scorer().options().fallback, -1.0);
  EXPECT_EQ(c->scorer().options().timeout_ms, 500.0);
  const json g = json{{"answer", "4"}};
  const RewardInput in = testing::make_input(
      {"<think>2+2</think><answer>\\boxed{4}</answer>",  // format 1, accuracy 1 -> 0.5 + 2 = 2.5
       "\\boxed{4}",                                    // format 0, accuracy 1 -> 2.0
       "<think>2+2</think><answer>5</answer>",          // format 1, accuracy 0 -> 0.5
       ""},                                             // malformed: both fallback -1 -> -0.5 - 2 = -2.5
      {g, g, g, g});
  const RewardOutput out = c->score(in);
  const auto r = out.rewards;
  EXPECT_FLOAT_EQ(r[0].item<float>(), 2.5f);
  EXPECT_FLOAT_EQ(r[1].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(r[2].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(r[3].item<float>(), -2.5f);
  // format rewards [1, 0, 1, -1]: mean 0.25, min -1, max 1
  EXPECT_DOUBLE_EQ(out.metrics.at("reward/format/mean"), 0.25);
  EXPECT_DOUBLE_EQ(out.metrics.at("reward/format/min"), -1.0);
  EXPECT_DOUBLE_EQ(out.metrics.at("reward/format/max"), 1.0);
  // accuracy [1, 1, 0, -1]: mean 0.25, population std sqrt(((.75)^2*2 + .25^2 + 1.25^2)/4) = sqrt(0.6875)
  EXPECT_NEAR(out.metrics.at("reward/accuracy/std"), std::sqrt(0.6875), 1e-6);
  // total [2.5, 2, 0.5, -2.5]: mean 0.625
  EXPECT_NEAR(out.metrics.at("reward/total/mean"), 0.625, 1e-6);
  EXPECT_EQ(out.metrics.at("scorer/malformed"), 2.0);  // once per verifier component
  EXPECT_EQ(out.metrics.at("scorer/timeouts"), 0.0);
  EXPECT_EQ(out.metrics.at("scorer/stuck_workers"), 0.0);
  EXPECT_TRUE(out.detail.count("format") && out.detail.count("accuracy") && out.detail.count("accuracy/status"));
  EXPECT_FALSE(out.token_rewards.defined());
}

TEST(CompositeReward, DeadlineAndFallbackComeFromTheConfig) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(R"(reward:
  timeout_ms: 20
  fallback: -1
  threads: 2
  components:
    - {scheme: slow_verifier, name: slow, weight: 2}
)"),
                                  reg);
  const auto t0 = std::chrono::steady_clock::now();
  const RewardOutput out = c->score(testing::make_input({"slow", "ok", "slow"}, {}));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 200.0);
  // weight 2 · fallback -1 = -2 for the stuck samples, 2 · 1 = 2 for the other
  EXPECT_TRUE(torch::equal(out.rewards, torch::tensor({-2.0f, 2.0f, -2.0f})));
  EXPECT_EQ(out.metrics.at("scorer/timeouts"), 2.0);
  EXPECT_EQ(out.metrics.at("scorer/stuck_workers"), 2.0);
}

// Issue 22 item 5: what the trainer needs to make a failing verifier loud — each component's share
// of failed verifier calls (reward/<name>/error_share; malformed texts are not calls) and the first
// message of each kind of failure, keyed "<name>/<kind>".
TEST(CompositeReward, FailuresAreReportedByComponentWithTheirFirstMessage) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(R"(reward:
  timeout_ms: 20
  threads: 2
  components:
    - {scheme: match_choice, name: choice}
    - {scheme: slow_verifier, name: slow}
)"),
                                  reg);
  const json bad = json{{"answer", "zz"}};  // not a choice letter: match_choice throws on every call
  const RewardOutput out = c->score(testing::make_input({"A", "slow", ""}, {bad, bad, bad}));
  EXPECT_DOUBLE_EQ(out.metrics.at("reward/choice/error_share"), 1.0);  // 2 calls, 2 errors ("" is malformed)
  EXPECT_NEAR(out.metrics.at("reward/slow/error_share"), 0.5, 1e-12);  // 2 calls, 1 timeout
  EXPECT_EQ(out.metrics.at("scorer/errors"), 2.0);
  ASSERT_TRUE(out.failures.count("choice/error"));
  EXPECT_NE(out.failures.at("choice/error").find("must be a choice letter among"), std::string::npos)
      << out.failures.at("choice/error");
  EXPECT_EQ(out.failures.at("choice/malformed"), "an empty response (0 bytes)");
  EXPECT_EQ(out.failures.at("slow/timeout"), "a verifier call ran past the deadline of 20 ms (reward.timeout_ms)");
  EXPECT_FALSE(out.failures.count("slow/error"));
  // The watch's limits: read and range-checked with the rest of the section.
  const auto spec = read_section("reward:\n  warn_error_share: 0.5\n  max_all_error_steps: 0\n");
  EXPECT_DOUBLE_EQ(spec.warn_error_share, 0.5);
  EXPECT_EQ(spec.max_all_error_steps, 0);
  EXPECT_EQ(RewardSpec{}.max_all_error_steps, 3);
  const std::string err = error_of([] { read_section("reward:\n  warn_error_share: 1.5\n  max_all_error_steps: -1\n"); });
  EXPECT_NE(err.find("reward.warn_error_share: must be <= 1.0, got 1.5"), std::string::npos) << err;
  EXPECT_NE(err.find("reward.max_all_error_steps: must be >= 0, got -1"), std::string::npos) << err;
}

TEST(CompositeReward, LaterComponentsSeePriorRewardsAndTokenRewardsAreWeighted) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(R"(reward:
  components:
    - {scheme: math_answer, name: accuracy, weight: 1.0}
    - {scheme: scaled_prior, name: bonus, weight: 0.5, params: {source: accuracy, scale: 4}}
)"),
                                  reg);
  const json g = json{{"answer", "1"}};
  const RewardOutput out = c->score(testing::make_input({"\\boxed{1}", "\\boxed{2}"}, {g, g}));
  // sample 0: accuracy 1, bonus 4·1 = 4 -> 1 + 0.5·4 = 3; sample 1: 0 + 0.5·0 = 0
  EXPECT_FLOAT_EQ(out.rewards[0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(out.rewards[1].item<float>(), 0.0f);
  ASSERT_TRUE(out.token_rewards.defined());
  EXPECT_TRUE(torch::allclose(out.token_rewards, torch::full({2, 3}, 0.5f)));  // 0.5 · ones
  EXPECT_EQ(out.metrics.at("reward/bonus/calls"), 1.0);
}

TEST(CompositeReward, StateRoundTripsUnderComponentNames) {
  const RewardRegistry reg = test_registry();
  const auto sec = read_section(R"(reward:
  components:
    - {scheme: math_answer, name: accuracy}
    - {scheme: scaled_prior, name: bonus, params: {source: accuracy}}
)");
  auto a = build_composite_reward(sec, reg);
  const json g = json{{"answer", "1"}};
  a->score(testing::make_input({"\\boxed{1}"}, {g}));
  a->score(testing::make_input({"\\boxed{1}"}, {g}));
  ASSERT_TRUE(a->stateful());
  RewardState st;
  a->save_state(st);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st.at("bonus/calls").item<int64_t>(), 2);
  auto b = build_composite_reward(sec, reg);
  b->load_state(st);
  EXPECT_EQ(dynamic_cast<const ScaledPrior&>(*b->components()[1].impl).calls(), 2);
  EXPECT_NE(error_of([&] { b->load_state({}); }).find("no entries for stateful component 'bonus'"), std::string::npos);
}

TEST(CompositeReward, UnknownSchemeNamesThePathAndTheKnownSchemes) {
  const RewardRegistry reg = test_registry();
  const std::string yaml = "reward:\n  components:\n    - {scheme: math_answr}\n";
  const std::string e = error_of([&] { build_composite_reward(read_section(yaml), reg); });
  EXPECT_NE(e.find("reward.components.0.scheme: unknown reward scheme 'math_answr'"), std::string::npos) << e;
  EXPECT_NE(e.find("math_answer"), std::string::npos) << e;
  // Through the config loader's own check: file:line and a suggestion.
  const std::string e2 = error_of([&] { read_section(yaml, &reg); });
  EXPECT_NE(e2.find("r.yaml:3: reward.components.0.scheme: unknown reward scheme 'math_answr', did you mean "
                    "'math_answer'?"),
            std::string::npos)
      << e2;
}

TEST(CompositeReward, UnknownOrIllTypedParamReportsFileAndLine) {
  const RewardRegistry reg = test_registry();
  const std::string yaml = R"(reward:
  components:
    - scheme: math_answer
      params:
        answer_keyy: gold
        correct: abc
)";
  const std::string e = error_of([&] { build_composite_reward(read_section(yaml), reg); });
  EXPECT_NE(e.find("r.yaml:5: reward.components.0.params.answer_keyy: unknown key (did you mean 'answer_key'?)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("r.yaml:6: reward.components.0.params.correct: expected a number"), std::string::npos) << e;
  // The same errors at config load, through KnownNames::reward_params.
  const std::string e2 = error_of([&] { read_section(yaml, &reg); });
  EXPECT_NE(e2.find("r.yaml:5: reward.components.0.params.answer_keyy: unknown key"), std::string::npos) << e2;
  // A missing required param.
  const std::string e3 = error_of([&] {
    build_composite_reward(read_section("reward:\n  components:\n    - scheme: format_regex\n      params: {mode: full}\n"), reg);
  });
  EXPECT_NE(e3.find("reward.components.0.params.pattern: missing required key"), std::string::npos) << e3;
  // No params section at all: at config load the error points at the component's line.
  const std::string e4 = error_of([&] { read_section("reward:\n  components:\n    - scheme: format_regex\n", &reg); });
  EXPECT_NE(e4.find("r.yaml:3: reward.components.0.params.pattern: missing required key"), std::string::npos) << e4;
}

TEST(CompositeReward, DuplicateNamesAndEmptyComponents) {
  const RewardRegistry reg = test_registry();
  const std::string e = error_of([&] {
    build_composite_reward(read_section("reward:\n  components:\n    - {scheme: math_answer}\n    - {scheme: math_answer}\n"), reg);
  });
  EXPECT_NE(e.find("duplicate reward component name 'math_answer'"), std::string::npos) << e;
  // No components: the task's own verifier with default params and weight 1.
  auto c = build_composite_reward(read_section("reward: {}\n"), reg, "task_countdown");
  ASSERT_EQ(c->components().size(), 1u);
  EXPECT_EQ(c->components()[0].scheme, "task_countdown");
  const RewardOutput out = c->score(testing::make_input({"<answer>2*3</answer>"}, {json{{"numbers", {2, 3}}, {"target", 6}}}));
  EXPECT_FLOAT_EQ(out.rewards[0].item<float>(), 1.0f);
  EXPECT_NE(error_of([&] { build_composite_reward(read_section("reward: {}\n"), reg); }).find("no reward components"),
            std::string::npos);
}

TEST(CompositeReward, ChecksTheInputShapes) {
  const RewardRegistry reg = test_registry();
  auto c = build_composite_reward(read_section(kTwoVerifiers), reg);
  RewardInput in = testing::make_input({"a", "b"}, {json::object(), json::object()});
  in.group_ids = torch::zeros({3}, torch::kInt64);
  EXPECT_THROW(c->score(in), c10::Error);
  in.group_ids = torch::zeros({2}, torch::kInt64);
  in.rm_scores = torch::zeros({5});
  EXPECT_THROW(c->score(in), c10::Error);
}

TEST(RewardRegistry, ListsEveryBuiltinVerifier) {
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"format_regex", "format_tags", "match_choice", "match_exact",
                                                   "match_normalized", "math_answer", "task_arithmetic",
                                                   "task_countdown"}));
  for (const auto& n : reg.names()) EXPECT_FALSE(reg.get(n).description.empty()) << n;
}

}  // namespace
}  // namespace keel::rewards
