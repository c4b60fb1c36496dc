#include "trainer/data/prompt_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

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

}  // namespace
}  // namespace keel::data
