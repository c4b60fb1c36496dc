#include "trainer/data/prompt_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/trainer/cli/run_keel.h"
#include "trainer/config/config.h"

namespace keel::data {
namespace {

std::vector<PromptRecord> numbered(int n) {
  std::vector<PromptRecord> v;
  for (int i = 0; i < n; ++i) {
    PromptRecord r;
    r.prompt = "p" + std::to_string(i);
    v.push_back(r);
  }
  return v;
}

std::vector<std::string> prompts(const std::vector<PromptRecord>& v) {
  std::vector<std::string> out;
  for (const auto& r : v) out.push_back(r.prompt);
  return out;
}

TEST(SeededPermutation, IsAPermutationAndDependsOnTheSeed) {
  for (size_t n : {0, 1, 2, 17, 100}) {
    auto p = seeded_permutation(n, 5);
    auto s = p;
    std::sort(s.begin(), s.end());
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(s[i], i);
    EXPECT_EQ(p, seeded_permutation(n, 5));
  }
  EXPECT_NE(seeded_permutation(100, 5), seeded_permutation(100, 6));
}

TEST(PromptSource, FileModeCoversEachEpochOnceAndReshuffles) {
  auto src = PromptSource::from_records(numbered(10), {}, 3, /*shuffle=*/true);
  const auto e0 = prompts(src.next_batch(10));
  const auto e1 = prompts(src.next_batch(10));
  EXPECT_EQ(std::set<std::string>(e0.begin(), e0.end()).size(), 10u);
  EXPECT_EQ(std::set<std::string>(e1.begin(), e1.end()).size(), 10u);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(src.cursor(), (PromptSource::Cursor{1, 10}));
}

TEST(PromptSource, CursorRestoreContinuesExactly) {
  auto a = PromptSource::from_records(numbered(7), {}, 11, true);
  a.next_batch(5);
  const auto saved = a.cursor();
  const auto expected = prompts(a.next_batch(9));  // crosses an epoch boundary
  auto b = PromptSource::from_records(numbered(7), {}, 11, true);
  b.restore(saved);
  EXPECT_EQ(prompts(b.next_batch(9)), expected);
}

TEST(PromptSource, TaskModeNeverTrainsOnHeldOutPrompts) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  config::DataSection c;
  c.task = "arithmetic";
  c.task_params = config::parse_yaml_string("min_digits: 1\nmax_digits: 1\n", "t.yaml");  // only 100 problems
  c.eval_size = 20;
  auto src = PromptSource::from_config(c, 1, reg);
  std::set<std::string> held;
  for (const auto& r : src.eval_set()) held.insert(r.prompt);
  EXPECT_GE(held.size(), 10u);
  for (const auto& r : src.next_batch(300)) EXPECT_FALSE(held.count(r.prompt)) << r.prompt;
  ASSERT_NE(src.task(), nullptr);
  EXPECT_EQ(src.task()->verifier(), "task_arithmetic");
}

TEST(PromptSource, TaskParamsAreValidated) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  config::DataSection c;
  c.task_params = config::parse_yaml_string("digits: 3\n", "t.yaml");
  try {
    PromptSource::from_config(c, 1, reg);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "t.yaml:1: data.task_params.digits: unknown key (known here: min_digits, max_digits, operands, ops, teacher_trailing_digit)");
  }
}

// reject_records (issue 22 item 1, the data side): a record that does not fit is refused at load
// naming it, or dropped and counted; the drop is the same on every load, so a cursor saved by one
// run resumes the same order in the next.
TEST(PromptSource, RejectedRecordsFailAtLoadOrAreDroppedAndCounted) {
  const auto long_ones = [](const PromptRecord& r) {
    return r.prompt == "p3" || r.prompt == "p7" ? "file:" + r.prompt.substr(1) + ": too long" : std::string();
  };
  auto strict = PromptSource::from_records(numbered(10), numbered(2), 5, true);
  try {
    strict.reject_records(long_ones, /*skip=*/false, "; HINT");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "file:3: too long (2 of the 12 records checked do not fit); HINT");
  }
  auto a = PromptSource::from_records(numbered(10), numbered(2), 5, true);
  a.reject_records(long_ones, /*skip=*/true, "");
  EXPECT_EQ(a.rejected(), 2);
  EXPECT_EQ(a.first_rejection(), "file:3: too long");
  EXPECT_EQ(a.train_size(), 8u);
  EXPECT_EQ(a.eval_set().size(), 2u);
  for (int epoch = 0; epoch < 3; ++epoch)
    for (const auto& p : prompts(a.next_batch(8))) EXPECT_TRUE(p != "p3" && p != "p7") << p;
  // Resume: a fresh load filtered the same way continues exactly.
  a.restore({1, 4});
  const auto expected = prompts(a.next_batch(6));
  auto b = PromptSource::from_records(numbered(10), {}, 5, true);
  b.reject_records(long_ones, true, "");
  b.restore({1, 4});
  EXPECT_EQ(prompts(b.next_batch(6)), expected);
  // Nothing left to train on is an error either way.
  auto c = PromptSource::from_records(numbered(3), {}, 5, true);
  EXPECT_THROW(c.reject_records([](const PromptRecord& r) { return r.prompt + ": too long"; }, true, ""), Error);
}

// A task's stream: the held-out set and a probe are checked at load; problems drawn later that do
// not fit are skipped and counted, never an error mid-run.
TEST(PromptSource, TaskProblemsThatDoNotFitAreSkippedWhenDrawn) {
  TaskRegistry reg("task");
  register_builtin_tasks(reg);
  config::DataSection c;
  c.task = "arithmetic";
  c.eval_size = 4;
  auto src = PromptSource::from_config(c, 1, reg);
  int64_t calls = 0;
  // Every third problem "does not fit".
  const auto every_third = [&calls](const PromptRecord& r) {
    return ++calls % 3 == 0 ? r.id + ": too long" : std::string();
  };
  try {
    auto strict = PromptSource::from_config(c, 1, reg);
    strict.reject_records(every_third, /*skip=*/false, "", /*task_probe=*/8);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(": too long ("), std::string::npos) << e.what();
  }
  calls = 0;
  src.reject_records(every_third, /*skip=*/true, "", /*task_probe=*/8);
  const int64_t at_load = src.rejected();
  EXPECT_EQ(at_load, 4);  // 12 checked: 4 held out + 8 probed
  EXPECT_EQ(src.next_batch(20).size(), 20u);
  EXPECT_EQ(src.rejected(), at_load + 9);  // 29 drawn to keep 20: every third of them skipped
  EXPECT_EQ(src.cursor().position, 29);
}

// Issue 22 item 12: a GSM8K-style file ({question, answer: "...#### 72"}) trains through `keel
// train` with data.prompt_key, data.answer_extract gsm8k and the math verifier; a bad rule is a
// config error naming the key.
TEST(PromptSource, Gsm8kStyleFileTrainsThroughKeelTrain) {
  testing::ScratchDir dir("gsm8k");
  std::string lines;
  for (int i = 1; i <= 8; ++i)
    lines += "{\"question\": \"Tom has " + std::to_string(i) + " apples and buys 2 more. How many?\", \"answer\": \"Tom has " +
             std::to_string(i) + " + 2 = " + std::to_string(i + 2) + " apples.\\n#### " + std::to_string(i + 2) + "\"}\n";
  dir.write("gsm8k.jsonl", lines);
  dir.write("c.yaml", R"(run: {name: g, total_steps: 2, device: cpu, seed: 1, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 64}
data: {train_file: gsm8k.jsonl, prompt_key: question, answer_key: answer, answer_extract: gsm8k, eval_fraction: 0.25}
rollout: {samples_per_prompt: 2, max_new_tokens: 4}
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 2}
learner: {algorithm: grpo}
reward:
  components:
    - {scheme: math_answer, name: accuracy}
eval: {every: 2, num_prompts: 2, k: 1}
checkpoint: {every: 0}
)");
  auto r = testing::run_keel("train c.yaml", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto m = testing::json_file_lines(dir.path() / "runs/g/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u);
  for (const auto& j : m) EXPECT_EQ(j.at("scorer/errors").get<double>(), 0.0) << j.dump();
  EXPECT_TRUE(m.back().contains("eval/pass@1")) << m.back().dump();
  // Without the keys the file is refused naming file:line; a regex rule needs a capture group.
  r = testing::run_keel("train c.yaml data.prompt_key=prompt run.output_dir=x", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("gsm8k.jsonl:1: missing 'prompt'"), std::string::npos) << r.out;
  r = testing::run_keel("validate c.yaml data.answer_extract=regex data.answer_regex=x+", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("data.answer_regex: 'x+' has no capture group"), std::string::npos) << r.out;
  r = testing::run_keel("validate c.yaml data.answer_extract=last", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("data.answer_extract"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::data
