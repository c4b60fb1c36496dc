// keel train with each generation engine (rollout.engine): the paged engine, under a KV pool small
// enough to preempt and recompute rows, trains exactly as the static engine does (same per-step
// metrics and weights within fp32 tolerance), and reports its figures (perf/rollout_*).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/trainer/cli/run_compare.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kRun = kTinyArithmeticRun + R"(
batch: {prompts_per_step: 4, mini_batch_size: 8, micro_batch_size: 2, epochs: 2}
learner: {algorithm: grpo}
optim: {lr: 1.0e-2, lr_schedule: constant}
eval: {every: 0}
checkpoint: {every: 0}
)";

TEST(TrainEngines, PagedTrainsAsStaticEvenWhenItPreempts) {
  ScratchDir dir("engines");
  dir.write("c.yaml", kRun);
  auto r = run_keel("train c.yaml run.output_dir=static rollout.engine=static", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // 8 rows decode together in a pool of 8 blocks of 2 tokens (a prompt is about 6 tokens, a row
  // grows to about 10): the pool runs out, rows are preempted and recomputed.
  r = run_keel("train c.yaml run.output_dir=paged rollout.engine=paged rollout.batch_size=8 rollout.kv_block_size=2 "
               "rollout.kv_blocks=8",
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto a = json_file_lines(dir.path() / "static" / "tiny" / "metrics.jsonl");
  const auto b = json_file_lines(dir.path() / "paged" / "tiny" / "metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b, 0, 30);
  expect_same_weights(dir.path() / "static" / "tiny", dir.path() / "paged" / "tiny", "policy");
  double preemptions = 0;
  for (const auto& line : b) {
    ASSERT_TRUE(line.contains("perf/rollout_prefill_tokens")) << line.dump();
    // 4 prompts x 4 samples: each prompt is computed once, its 3 other samples reuse it.
    EXPECT_GT(line["perf/rollout_reused_prompt_tokens"].get<double>(), 0);
    EXPECT_GT(line["perf/rollout_kv_peak_mib"].get<double>(), 0);
    preemptions += line["perf/rollout_preemptions"].get<double>();
    EXPECT_FALSE(a[0].contains("perf/rollout_prefill_tokens"));
  }
  EXPECT_GT(preemptions, 0);
}

// 3 blocks of 2 tokens pass validate (they hold max_new_tokens 4 and a prompt token) but not a
// real prompt of about 6 tokens and its response: the first rollout stops the run, naming the key.
TEST(TrainEngines, APoolTooSmallForOneSequenceIsAClearError) {
  ScratchDir dir("engines_small");
  dir.write("c.yaml", kRun);
  const auto r = run_keel("train c.yaml rollout.kv_block_size=2 rollout.kv_blocks=3", dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("cannot hold one sequence"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rollout.kv_blocks"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::testing
