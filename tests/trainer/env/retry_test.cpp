// Environment "retry" (reflect-then-retry around a single-turn task): hand-played episodes on
// arithmetic records with pinned observations, rewards and info (right first time; wrong then
// right; hint too high / too low, exact for long integers; wrong until the attempts run out; empty
// answers); grading equal to the task_arithmetic verifier itself; the expert with and without a
// wrong first attempt; another verifier (match_exact); bad params and records naming the key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"
#include "rewards/reward.h"
#include "rewards/verifiers/verifier.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"
#include "trainer/env/episodes.h"

namespace keel::env {

extern void register_retry(EnvRegistry& envs);

namespace {

struct Built {
  std::unique_ptr<EnvFactory> env;
  std::vector<std::string> errors;
};

/// The environment from `params` (env.params as YAML flow text).
Built build(const std::string& params = "{}") {
  EnvRegistry envs("environment");
  register_retry(envs);
  auto root = config::parse_yaml_string("env: " + params + "\n", "t.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "", d);
  Built b;
  r.section("env", "", [&](config::Reader& s) { b.env = envs.get("retry").fn(s); });
  b.errors = d.errors();
  return b;
}

/// The errors of `params`, one line each, joined.
std::string errors_of(const std::string& params) {
  std::string all;
  for (const auto& e : build(params).errors) all += e + "\n";
  return all;
}

data::PromptRecord record(const std::string& prompt, const std::string& answer) {
  data::PromptRecord r;
  r.id = "hand/" + prompt;
  r.prompt = prompt;
  r.answer = answer;
  return r;
}

/// Checks the five info keys of a step.
void expect_info(const StepResult& s, double success, double attempts, double pivot, double first_correct,
                 double invalid) {
  ASSERT_EQ(s.info.size(), 5u);
  EXPECT_EQ(s.info.at("success"), success);
  EXPECT_EQ(s.info.at("attempts"), attempts);
  EXPECT_EQ(s.info.at("pivot_turn"), pivot);
  EXPECT_EQ(s.info.at("first_correct"), first_correct);
  EXPECT_EQ(s.info.at("invalid_action"), invalid);
}

TEST(RetryEnv, FactoryShape) {
  auto b = build();
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  EXPECT_EQ(b.env->info_keys(),
            (std::vector<std::string>{"success", "attempts", "pivot_turn", "first_correct", "invalid_action"}));
  EXPECT_TRUE(b.env->required_meta().empty());
  EXPECT_EQ(b.env->task(), "");
}

TEST(RetryEnv, RightFirstTime) {
  auto b = build();
  auto env = b.env->make();
  EXPECT_EQ(env->reset(record("3+4=", "7"), 1), "");
  const auto s = env->step("7");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  EXPECT_EQ(s.observation, "");
  expect_info(s, /*success=*/1, /*attempts=*/1, /*pivot=*/0, /*first_correct=*/1, /*invalid=*/0);
  EXPECT_FALSE(env->expert_action().has_value());  // done: nothing left to do
}

TEST(RetryEnv, WrongThenRight) {
  auto b = build("{retry_success_reward: 1.5}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto env = b.env->make();
  env->reset(record("3+4=", "7"), 1);
  auto s = env->step("8");
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 1, 0, 0, 0);  // no retry yet: pivot 0
  // task_arithmetic reads "the answer is 7" as 7.
  s = env->step("so the answer is 7");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.5);  // retry_success_reward, not the first attempt's 1
  EXPECT_EQ(s.observation, "");
  expect_info(s, 1, 2, 1, 0, 0);  // the retry is turn 1: pivot_turn 1
}

TEST(RetryEnv, WrongUntilTheAttemptsRunOut) {
  auto b = build();  // max_attempts 2
  auto env = b.env->make();
  env->reset(record("3+4=", "7"), 1);
  auto s = env->step("6");
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 1, 0, 0, 0);
  s = env->step("12");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.observation, "");
  expect_info(s, 0, 2, 1, 0, 0);
  EXPECT_FALSE(env->expert_action().has_value());
  // A step after the end changes nothing.
  s = env->step("7");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  expect_info(s, 0, 2, 1, 0, 0);

  // max_attempts 1: the first wrong answer ends it.
  auto one = build("{max_attempts: 1}").env->make();
  one->reset(record("3+4=", "7"), 1);
  s = one->step("8");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.observation, "");
  expect_info(s, 0, 1, 0, 0, 0);
}

TEST(RetryEnv, HintSaysTooHighOrTooLow) {
  auto b = build("{feedback: hint, max_attempts: 5, retry_success_reward: 0.5}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto env = b.env->make();
  env->reset(record("3+4=", "7"), 1);
  auto s = env->step("9");
  EXPECT_EQ(s.observation, "wrong, too high, try again");
  expect_info(s, 0, 1, 0, 0, 0);
  s = env->step("<answer>-5</answer>");
  EXPECT_EQ(s.observation, "wrong, too low, try again");
  expect_info(s, 0, 2, 1, 0, 0);
  s = env->step("no idea");  // no number: plain feedback
  EXPECT_EQ(s.observation, "wrong, try again");
  s = env->step("");  // empty: invalid, plain feedback
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 4, 1, 0, 1);
  s = env->step("7");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.5);
  expect_info(s, 1, 5, 1, 0, 0);

  // Integers beyond double precision compare exactly: 10^20 + 1 vs 10^20 + 2 (equal as doubles).
  env->reset(record("big", "100000000000000000002"), 2);
  EXPECT_EQ(env->step("100000000000000000001").observation, "wrong, too low, try again");
  EXPECT_EQ(env->step("100000000000000000003").observation, "wrong, too high, try again");
  EXPECT_EQ(env->step("-100000000000000000003").observation, "wrong, too low, try again");
}

TEST(RetryEnv, FeedbackNoneShowsNothing) {
  auto env = build("{feedback: none}").env->make();
  env->reset(record("3+4=", "7"), 1);
  const auto s = env->step("8");
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.observation, "");
  expect_info(s, 0, 1, 0, 0, 0);
  EXPECT_TRUE(env->step("7").done);
}

TEST(RetryEnv, EmptyAnswerIsAnInvalidWrongAttempt) {
  auto env = build().env->make();
  env->reset(record("3+4=", "7"), 1);
  auto s = env->step("  \n");
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 1, 0, 0, 1);
  s = env->step("7");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  expect_info(s, 1, 2, 1, 0, 0);
  // Two empty answers use both attempts; invalid UTF-8 is wrong (the Scorer's malformed), not invalid.
  env->reset(record("3+4=", "7"), 1);
  s = env->step("");
  expect_info(s, 0, 1, 0, 0, 1);
  s = env->step("7\xff");
  EXPECT_TRUE(s.done);
  expect_info(s, 0, 2, 1, 0, 0);
}

TEST(RetryEnv, GradesAsTheTaskVerifier) {
  data::TaskRegistry tasks("task");
  data::register_builtin_tasks(tasks);
  config::Diagnostics d;
  config::Reader tr(nullptr, "", d);
  const auto task = tasks.get("arithmetic").fn(tr);
  ASSERT_EQ(task->verifier(), "task_arithmetic");
  rewards::RewardRegistry rewards("reward scheme");
  rewards::register_builtin_rewards(rewards);
  config::Reader vr(nullptr, "", d);
  const auto scheme = rewards.get("task_arithmetic").fn(vr);
  const auto& fn = dynamic_cast<rewards::VerifierReward&>(*scheme).fn();
  auto factory = build("{max_attempts: 1}").env;
  for (uint64_t i = 0; i < 20; ++i) {
    const auto r = task->make(3, data::Split::kTrain, i);
    const nlohmann::json meta = {{"expression", nlohmann::json::parse(r.meta.at("expression"))}, {"answer", r.answer}};
    for (const std::string& resp : {r.answer, "The answer is " + r.answer, r.answer + "1", std::string("1,000"), "x " + r.answer + " y",
                                    task->wrong_response(r, i)}) {
      auto env = factory->make();
      env->reset(r, i);
      const auto s = env->step(resp);
      EXPECT_EQ(s.info.at("success"), fn(resp, meta)) << r.prompt << " " << resp;
      EXPECT_EQ(s.reward, fn(resp, meta)) << r.prompt << " " << resp;
    }
  }
  ASSERT_TRUE(d.ok());
}

TEST(RetryEnv, ExpertAnswersTheGold) {
  auto env = build().env->make();  // expert_first_wrong 0
  env->reset(record("3+4=", "7"), 5);
  EXPECT_EQ(env->expert_action(), "7");
  const auto s = env->step(*env->expert_action());
  EXPECT_TRUE(s.done);
  expect_info(s, 1, 1, 0, 1, 0);
  // No gold, no expert (task_countdown reads meta numbers / target, not the answer).
  auto countdown = build("{verifier: task_countdown}").env->make();
  auto r = record("3 4 -> 7:", "");
  r.meta = {{"numbers", "[3, 4]"}, {"target", "7"}};
  countdown->reset(r, 5);
  EXPECT_FALSE(countdown->expert_action().has_value());
  const auto c = countdown->step("3+4");
  EXPECT_TRUE(c.done);
  expect_info(c, 1, 1, 0, 1, 0);
}

TEST(RetryEnv, ExpertFirstWrongShowsARetry) {
  auto b = build("{expert_first_wrong: 1.0}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto env = b.env->make();
  env->reset(record("12+34=", "46"), 5);
  // Seed 5 draws a change of the last digit by 6: 6 -> (6 + 6) mod 10 = 2.
  EXPECT_EQ(env->expert_action(), "42");
  auto s = env->step(*env->expert_action());
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 1, 0, 0, 0);
  EXPECT_EQ(env->expert_action(), "46");
  s = env->step(*env->expert_action());
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  expect_info(s, 1, 2, 1, 0, 0);
  // The same seed draws the same; every seed has a wrong first attempt at probability 1.
  env->reset(record("12+34=", "46"), 5);
  EXPECT_EQ(env->expert_action(), "42");
  for (uint64_t seed = 0; seed < 50; ++seed) {
    env->reset(record("12+34=", "46"), seed);
    const auto a = env->expert_action();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->size(), 2u);
    EXPECT_EQ((*a)[0], '4');
    EXPECT_NE(*a, "46");
  }
  // Expert episode as text (plain template): the wrong attempt, the feedback, the right answer.
  EpisodeOptions eo;
  EXPECT_EQ(expert_transcript(*b.env, record("12+34=", "46"), 5, "plain", eo),
            "12+34= 42\nTool: wrong, try again\nAssistant: 46");

  // With one attempt there is no retry to show: the expert answers right at once.
  auto single = build("{expert_first_wrong: 1.0, max_attempts: 1}").env->make();
  single->reset(record("12+34=", "46"), 5);
  EXPECT_EQ(single->expert_action(), "46");

  // Probability 0.5: deterministic per seed, about half of the seeds.
  auto half = build("{expert_first_wrong: 0.5}").env->make();
  int wrong_first = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    half->reset(record("12+34=", "46"), seed);
    const std::string a = *half->expert_action();
    half->reset(record("12+34=", "46"), seed);
    EXPECT_EQ(*half->expert_action(), a);
    wrong_first += a != "46";
  }
  EXPECT_GT(wrong_first, 160);
  EXPECT_LT(wrong_first, 240);
}

TEST(RetryEnv, OtherVerifierMatchExact) {
  auto b = build("{verifier: match_exact, feedback: hint, max_attempts: 3, expert_first_wrong: 1.0}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto env = b.env->make();
  env->reset(record("capital of France?", "Paris"), 1);
  // No digit to change: the expert answers right at once.
  EXPECT_EQ(env->expert_action(), "Paris");
  auto s = env->step("paris");  // case-sensitive by default; no numbers: plain feedback
  EXPECT_EQ(s.observation, "wrong, try again");
  expect_info(s, 0, 1, 0, 0, 0);
  s = env->step("Paris");
  EXPECT_TRUE(s.done);
  expect_info(s, 1, 2, 1, 0, 0);
  // Numbers as whole answers get the hint; decimals compare exactly.
  env->reset(record("half?", "0.5"), 1);
  EXPECT_EQ(env->step("0.75").observation, "wrong, too high, try again");
  EXPECT_EQ(env->step("1/4").observation, "wrong, too low, try again");
}

TEST(RetryEnv, RecordWithoutTheVerifiersInputFails) {
  auto env = build().env->make();
  try {
    env->reset(record("3+4=", ""), 1);
    FAIL() << "expected a missing-answer error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "retry: record 'hand/3+4=' has no answer (verifier 'task_arithmetic' reads it)");
  }
  // A gold the verifier cannot read fails the episode with the verifier's message.
  env->reset(record("3+4=", "seven"), 1);
  try {
    env->step("7");
    FAIL() << "expected a verifier error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retry: record 'hand/3+4=': verifier 'task_arithmetic' failed: "),
              std::string::npos)
        << e.what();
  }
}

TEST(RetryEnv, BadParamsNameTheKey) {
  const std::string unknown = errors_of("{verifier: task_arith}");
  EXPECT_NE(unknown.find("env.verifier: unknown verifier 'task_arith' (known: "
                         "match_choice, match_exact, match_normalized, math_answer, task_arithmetic, task_countdown)"),
            std::string::npos)
      << unknown;
  // A format check judges no correctness: not a verifier here.
  EXPECT_NE(errors_of("{verifier: format_tags}").find("env.verifier: unknown verifier 'format_tags'"),
            std::string::npos);
  const std::string zero = errors_of("{max_attempts: 0}");
  EXPECT_NE(zero.find("env.max_attempts: must be >= 1, got 0"), std::string::npos) << zero;
  EXPECT_NE(errors_of("{feedback: loud}").find("env.feedback: unknown feedback 'loud'"), std::string::npos);
  EXPECT_NE(errors_of("{expert_first_wrong: 1.5}").find("env.expert_first_wrong: must be <= 1"), std::string::npos);
  EXPECT_NE(errors_of("{retry_success_reward: -1}").find("env.retry_success_reward: must be >= 0"),
            std::string::npos);
  EXPECT_NE(errors_of("{max_attempt: 3}").find("max_attempt"), std::string::npos);  // unknown key
  EXPECT_EQ(errors_of("{verifier: task_countdown, max_attempts: 3, feedback: none}"), "");
}

}  // namespace
}  // namespace keel::env
