// Tests of trainer/config/config.{h,cpp} bounds that keep a config from validating and then failing
// or hanging: the batch arithmetic's int range, thread counts, and a hub name given as model.path.
#include "trainer/config/config.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/reader.h"
#include "tests/trainer/config/config_test_util.h"

namespace keel::config {
namespace {

/// "" when `yaml` (as c.yaml, with `overrides`) loads, else the loader's message.
std::string load_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return testing::load_error(yaml, nullptr, overrides);
}

// 2^30 prompts x 8 samples is 2^33 rows: past what the rows' int counters hold.
TEST(Config, BatchProductsStayInIntRange) {
  EXPECT_EQ(load_error("batch:\n  prompts_per_step: 1073741824\n"),
            "c.yaml:1: batch: the rollout batch prompts_per_step 1073741824 x rollout.samples_per_prompt 8 = "
            "8589934592 sequences is more than 2147483647");
  EXPECT_EQ(load_error("eval:\n  k: 2147483647\n"),
            "c.yaml:1: eval: num_prompts 64 x k 2147483647 samples per evaluation is more than 2147483647");
  // A task's held-out set bounds the prompts an evaluation samples: num_prompts alone is not a product.
  EXPECT_EQ(load_error("eval:\n  num_prompts: 9223372036854775807\n"), "");
}

// run.threads 1000000 validated, then hung creating the pool.
TEST(Config, ThreadCountsHaveASaneBound) {
  EXPECT_EQ(load_error("run:\n  threads: 1000000\n"), "c.yaml:2: run.threads: must be <= 1024, got 1000000");
  EXPECT_EQ(load_error("env:\n  threads: 5000\n"), "c.yaml:2: env.threads: must be <= 1024, got 5000");
  EXPECT_EQ(load_error("reward:\n  threads: 5000\n"), "c.yaml:2: reward.threads: must be <= 1024, got 5000");
  EXPECT_EQ(load_error("run:\n  threads: 1000\n"), "");  // capped to the hardware at run time, with a warning
}

// model.path=Qwen/Qwen2.5-0.5B-Instruct failed at load, blaming the tokenizer.
TEST(Config, AHubNameAsModelPathIsAnError) {
  const std::string e = load_error("model:\n  path: Qwen/Qwen2.5-0.5B-Instruct\n");
  EXPECT_EQ(e.rfind("c.yaml:2: model.path: 'Qwen/Qwen2.5-0.5B-Instruct' is not a local directory and looks like a "
                    "Hugging Face hub name: keel does not download or resolve hub names",
                    0),
            0u)
      << e;
  EXPECT_NE(load_error("{}", {"model.path=Qwen/Qwen2.5-0.5B-Instruct"}).find("override model.path="), std::string::npos);
  // A chain's earlier run under run.output_dir is trained later; absolute paths are the loader's.
  EXPECT_EQ(load_error("model:\n  path: runs/judge_sft\n"), "");
  EXPECT_EQ(load_error("model:\n  path: /models/Qwen2.5-0.5B-Instruct\n"), "");
}

TEST(Config, SkipMemoryCheckIsAKey) {
  EXPECT_EQ(load_error("run:\n  skip_memory_check: true\n"), "");
}

}  // namespace
}  // namespace keel::config
