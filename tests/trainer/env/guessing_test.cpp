// Environment and task "guessing": a hand-played episode with pinned observations, rewards and
// info (information gains worked out in comments); the expert solves every generated problem;
// records are deterministic; bad knobs and bad records give errors naming the key or record.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/data/task.h"
#include "tests/trainer/env/env_test_util.h"
#include "trainer/env/environment.h"

namespace keel::env {

void register_guessing(EnvRegistry& envs, data::TaskRegistry& tasks);

namespace {

using testing::Built;

/// The environment from `env_yaml` (env.params) and the task from `task_yaml` (data.task_params).
Built build(const std::string& env_yaml = "{}", const std::string& task_yaml = "{}") {
  return testing::build(register_guessing, "guessing", env_yaml, task_yaml);
}

/// The first train record (seed 1) whose hidden item is `item`.
data::PromptRecord record_hiding(const data::Task& t, const std::string& item) {
  for (uint64_t i = 0;; ++i) {
    auto r = t.make(1, data::Split::kTrain, i);
    if (r.answer == item) return r;
  }
}

void expect_info(const StepResult& s, double success, double gain, double candidates, double invalid) {
  EXPECT_EQ(s.info.size(), 4u);
  EXPECT_EQ(s.info.at("success"), success);
  EXPECT_NEAR(s.info.at("info_gain"), gain, 1e-12);
  EXPECT_EQ(s.info.at("candidates"), candidates);
  EXPECT_EQ(s.info.at("invalid_action"), invalid);
}

TEST(GuessingTask, PromptAndMeta) {
  auto b = build();
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  const auto r = b.task->make(1, data::Split::kTrain, 0);
  EXPECT_EQ(r.prompt,
            "Guess the animal: cat cow fox bear duck goose bee eagle. Ask is big? is wild? is winged? is aquatic? or "
            "guess <name>.");
  EXPECT_EQ(r.meta.at("item"), "\"" + r.answer + "\"");
  EXPECT_EQ(r.meta.at("attributes"), R"(["big","wild","winged","aquatic"])");
  const auto items = nlohmann::json::parse(r.meta.at("items"));
  ASSERT_EQ(items.size(), 8u);
  EXPECT_EQ(items[6].dump(), R"({"has":["wild","winged"],"name":"bee"})");
  for (const auto& key : b.env->required_meta()) EXPECT_TRUE(r.meta.count(key)) << key;
  EXPECT_EQ(b.env->task(), "guessing");
  EXPECT_EQ(b.env->info_keys(), (std::vector<std::string>{"success", "info_gain", "candidates", "invalid_action"}));
  EXPECT_EQ(b.task->verifier(), "env");
  const auto symbols = b.task->tokenizer_symbols();
  ASSERT_EQ(symbols.size(), 17u);  // is guess yes no must, 4 attributes, 8 names
  EXPECT_EQ(symbols[0], "\xE2\x96\x81" "is");  // "▁is"
  EXPECT_EQ(symbols[16], "\xE2\x96\x81" "eagle");
}

TEST(GuessingEnv, HandPlayedEpisode) {
  auto b = build("{info_weight: 0.5, max_questions: 4}");
  auto env = b.env->make();
  // bee: wild, winged. The eight: cat -, cow big, fox wild, bear big wild, duck winged aquatic,
  // goose big winged aquatic, bee wild winged, eagle big wild winged. K = 8, log2 K = 3.
  EXPECT_EQ(env->reset(record_hiding(*b.task, "bee"), 7), "");
  // big? no: 8 -> 4 (cat fox duck bee); gain (log2 8 - log2 4) / 3 = 1/3, reward 0.5/3.
  auto s = env->step("is big?");
  EXPECT_EQ(s.observation, "no");
  EXPECT_FALSE(s.done);
  EXPECT_NEAR(s.reward, 0.5 / 3, 1e-12);
  expect_info(s, 0, 1.0 / 3, 4, 0);
  // aquatic? no: 4 -> 3 (cat fox bee); gain (2 - log2 3) / 3 = 0.138345833...
  s = env->step("  is aquatic?\n");
  EXPECT_EQ(s.observation, "no");
  EXPECT_NEAR(s.reward, 0.5 * (2 - std::log2(3.0)) / 3, 1e-12);
  expect_info(s, 0, 0.13834583309295, 3, 0);
  // Asking again tells nothing but uses a question (3 of 4).
  s = env->step("is big?");
  EXPECT_EQ(s.observation, "no");
  EXPECT_EQ(s.reward, 0.0);
  expect_info(s, 0, 0, 3, 0);
  // Unknown attribute, free text, a two-word guess: invalid, no question used.
  for (const std::string bad : {"is red?", "is big", "hello", "guess bee fox", "guess", ""}) {
    s = env->step(bad);
    EXPECT_EQ(s.observation, "invalid") << bad;
    EXPECT_FALSE(s.done) << bad;
    EXPECT_EQ(s.reward, 0.0) << bad;
    expect_info(s, 0, 0, 3, 1);
  }
  // winged? yes: 3 -> 1; gain log2 3 / 3 = 0.528320833... (the gains sum to 1: one left of 8).
  s = env->step("is winged?");
  EXPECT_EQ(s.observation, "yes");
  EXPECT_NEAR(s.reward, 0.5 * std::log2(3.0) / 3, 1e-12);
  expect_info(s, 0, 0.52832083357372, 1, 0);
  // The fifth question is over max_questions: not answered, not invalid.
  s = env->step("is wild?");
  EXPECT_EQ(s.observation, "must guess");
  EXPECT_FALSE(s.done);
  expect_info(s, 0, 0, 1, 0);
  EXPECT_EQ(env->expert_action(), "guess bee");
  // A wrong guess ends the episode with reward 0.
  s = env->step("guess fox");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  expect_info(s, 0, 0, 1, 0);
  EXPECT_EQ(env->expert_action(), std::nullopt);
}

TEST(GuessingEnv, RightGuessAndReset) {
  auto b = build();
  auto env = b.env->make();
  const auto r = record_hiding(*b.task, "eagle");
  env->reset(r, 0);
  auto s = env->step("guess eagle");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 1.0);
  expect_info(s, 1, 0, 8, 0);
  // reset starts over: all candidates, questions answered again.
  env->reset(r, 0);
  s = env->step("is big?");
  EXPECT_EQ(s.observation, "yes");
  EXPECT_NEAR(s.reward, 0.1 / 3, 1e-12);
  expect_info(s, 0, 1.0 / 3, 4, 0);
}

/// Rolls the expert through a fresh environment; returns (success, turns, summed question reward).
struct Rollout {
  double success = 0;
  int turns = 0;
  double question_reward = 0;
  std::string actions;
};
Rollout roll_expert(const EnvFactory& f, const data::PromptRecord& r, int max_turns) {
  const auto run = testing::roll_expert(f, r, max_turns);
  Rollout out;
  out.actions = run.actions;
  for (const auto& s : run.steps) {
    ++out.turns;
    EXPECT_EQ(s.info.at("invalid_action"), 0.0);
    if (s.done) out.success = s.info.at("success");
    else out.question_reward += s.reward;
  }
  return out;
}

TEST(GuessingEnv, ExpertSolvesEveryProblem) {
  // Default items: big / wild / winged split the eight 4-4-4, so always 3 questions and a guess,
  // and the question rewards add up to info_weight (the gains sum to log2 8 / log2 8 = 1).
  auto b = build();
  std::set<std::string> hidden;
  for (uint64_t i = 0; i < 200; ++i) {
    const auto r = b.task->make(3, data::Split::kTrain, i);
    hidden.insert(r.answer);
    const auto out = roll_expert(*b.env, r, 5);
    EXPECT_EQ(out.success, 1.0) << r.id;
    EXPECT_EQ(out.turns, 4) << r.id;
    EXPECT_NEAR(out.question_reward, 0.1, 1e-12) << r.id;
    EXPECT_EQ(b.task->gold_response(r), out.actions) << r.id;
  }
  EXPECT_EQ(hidden.size(), 8u);
  EXPECT_EQ(b.task->gold_response(record_hiding(*b.task, "bee")), "is big?\nis wild?\nis winged?\nguess bee");
  EXPECT_EQ(b.task->gold_response(record_hiding(*b.task, "cat")), "is big?\nis wild?\nis winged?\nguess cat");

  // Random five-item subsets: the expert still finishes within max_questions + 1 turns.
  auto sub = build("{}", "{candidates: 5}");
  ASSERT_TRUE(sub.errors.empty()) << sub.errors[0];
  int total_turns = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const auto r = sub.task->make(3, data::Split::kEval, i);
    const auto out = roll_expert(*sub.env, r, 5);
    EXPECT_EQ(out.success, 1.0) << r.id << ": " << r.prompt;
    total_turns += out.turns;
  }
  std::printf("guessing candidates 5: expert solved 200/200, %.2f turns on average\n", total_turns / 200.0);
  EXPECT_LT(total_turns, 200 * 4);  // five candidates rarely need three questions
}

TEST(GuessingTask, DeterministicSubsetsPerSeedAndSplit) {
  auto b = build("{}", "{candidates: 4, noun: bird}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  std::set<std::string> train, eval;
  for (uint64_t i = 0; i < 100; ++i) {
    const auto r = b.task->make(5, data::Split::kTrain, i);
    const auto again = b.task->make(5, data::Split::kTrain, i);
    EXPECT_EQ(r.prompt, again.prompt);
    EXPECT_EQ(r.meta, again.meta);
    EXPECT_EQ(r.id, "guessing/train/" + std::to_string(i));
    EXPECT_EQ(r.prompt.rfind("Guess the bird: ", 0), 0u) << r.prompt;
    const auto items = nlohmann::json::parse(r.meta.at("items"));
    EXPECT_EQ(items.size(), 4u);
    bool found = false;
    for (const auto& it : items) found |= it.at("name") == r.answer;
    EXPECT_TRUE(found) << r.prompt << " hides " << r.answer;
    train.insert(r.prompt + r.answer);
    eval.insert(b.task->make(5, data::Split::kEval, i).prompt + b.task->make(5, data::Split::kEval, i).answer);
  }
  EXPECT_GT(train.size(), 40u);  // 70 subsets x 4 hidden items
  EXPECT_NE(train, eval);
}

TEST(GuessingEnv, CustomItemsAndRecordErrors) {
  auto b = build("{}", "{attributes: [red, round], items: ['apple:red,round', 'cherry:red', 'pea:round', kiwi], "
                       "noun: fruit}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto r = record_hiding(*b.task, "pea");
  EXPECT_EQ(r.prompt, "Guess the fruit: apple cherry pea kiwi. Ask is red? is round? or guess <name>.");
  EXPECT_EQ(b.task->gold_response(r), "is red?\nis round?\nguess pea");

  auto env = b.env->make();
  auto bad = r;
  bad.meta.erase("items");
  try {
    env->reset(bad, 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("record 'guessing/train/"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("meta.items"), std::string::npos) << e.what();
  }
  bad = r;
  bad.meta["item"] = "\"plum\"";
  EXPECT_THROW(env->reset(bad, 0), Error);
  bad = r;
  bad.meta["items"] = R"([{"name": "apple", "has": ["blue"]}])";
  EXPECT_THROW(env->reset(bad, 0), Error);
  bad.meta["items"] = "{not json";
  EXPECT_THROW(env->reset(bad, 0), Error);
}

TEST(GuessingParams, BadValuesNameTheKey) {
  const auto has = testing::has_error;
  auto e = build("{info_weight: -1, max_questions: 0, max_question: 3}").errors;
  ASSERT_EQ(e.size(), 3u);
  EXPECT_TRUE(has(e, "env.info_weight: must be >= 0")) << e[0];
  EXPECT_TRUE(has(e, "env.max_questions: must be >= 1")) << e[1];
  EXPECT_TRUE(has(e, "env.max_question: unknown key (did you mean 'max_questions'?)")) << e[2];

  e = build("{}", "{items: ['cat', 'dog:big', 'cow:big', 'owl:fly,wild']}").errors;
  ASSERT_EQ(e.size(), 2u);
  EXPECT_TRUE(has(e, "task.items: 'dog' and 'cow' have the same attributes")) << e[0];
  EXPECT_TRUE(has(e, "task.items: 'owl:fly,wild': attribute 'fly' is not in attributes")) << e[1];
  e = build("{}", "{candidates: 1}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.candidates: must be 0 (all) or in [2, 8]")) << e[0];
  e = build("{}", "{candidates: 9}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.candidates: must be 0 (all) or in [2, 8] (the number of items), got 9")) << e[0];
  e = build("{}", "{attributes: [big, big], items: ['cow:big', cat]}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.attributes: must not repeat an attribute")) << e[0];
  e = build("{}", "{items: ['two words']}").errors;
  EXPECT_TRUE(has(e, "task.items: 'two words': the name is not one word")) << e[0];
  EXPECT_TRUE(has(e, "task.items: needs at least 2 items")) << e[0];
}

}  // namespace
}  // namespace keel::env
