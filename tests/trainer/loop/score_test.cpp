// The score stage's watch over a failing verifier (issue 22 item 5): a verifier that failed on
// every sample used to train on the fallback reward in silence (rc 0, 100% scorer/errors). Unit
// tests of ScoreWatch, then `keel train` on a tiny config whose verifier throws on every sample.
#include "trainer/loop/score.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::loop {
namespace {

metrics::Metrics shares(double choice, double format) {
  return {{"reward/choice/error_share", choice}, {"reward/format/error_share", format}, {"reward/total/mean", 1.0}};
}

rewards::RewardOutput failing(const std::string& message) {
  rewards::RewardOutput out;
  out.failures["choice/error"] = message;
  out.failures["choice/malformed"] = "an empty response (0 bytes)";
  return out;
}

TEST(ScoreWatch, StopsAfterTheConfiguredStepsInARowWhereAVerifierFailedOnEverySample) {
  ScoreWatch w(/*warn_error_share=*/0.25, /*max_all_error_steps=*/3);
  w.log_failures(failing("metadata 'answer' must be a choice letter"));
  w.log_failures(failing("a later message is not the first"));
  w.check_step(1, shares(1.0, 0.0));
  w.check_step(2, shares(1.0, 0.0));
  w.check_step(3, shares(0.9, 0.0));  // one sample scored: the count starts again
  w.check_step(4, shares(1.0, 0.0));
  w.check_step(5, shares(1.0, 0.0));
  try {
    w.check_step(6, shares(1.0, 0.0));
    FAIL() << "a third step in a row at 100% must stop the run";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("reward component 'choice': the verifier failed on every sample for 3 steps in a row (steps "
                     "4-6; reward.max_all_error_steps 3)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("first error: metadata 'answer' must be a choice letter"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT:"), std::string::npos) << m;
  }
}

TEST(ScoreWatch, ZeroNeverStopsAndHealthyComponentsPass) {
  ScoreWatch never(0.25, /*max_all_error_steps=*/0);
  for (int64_t s = 1; s <= 20; ++s) EXPECT_NO_THROW(never.check_step(s, shares(1.0, 1.0)));
  ScoreWatch w(0.25, 1);
  EXPECT_NO_THROW(w.check_step(1, shares(0.5, 0.0)));
  EXPECT_NO_THROW(w.check_step(2, {{"reward/total/mean", 0.0}}));  // no verifier components
  // Without the message in this process (a disaggregated learner), the error says where it is.
  try {
    w.check_step(3, shares(0.0, 1.0));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'format'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("see the scoring ranks' log"), std::string::npos) << e.what();
  }
}

namespace stdfs = std::filesystem;
using testing::run_keel;
using testing::ScratchDir;

// Prompts whose gold answer is no choice letter: match_choice throws on every (non-empty) response.
std::string write_poisoned_run(const ScratchDir& dir) {
  std::string lines;
  for (int i = 0; i < 8; ++i) lines += "{\"prompt\": \"Pick one: " + std::to_string(i) + "\", \"answer\": \"zz\"}\n";
  dir.write("p.jsonl", lines);
  dir.write("c.yaml", R"(run: {name: v, total_steps: 8, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 64}
data: {train_file: p.jsonl, eval_fraction: 0}
rollout: {samples_per_prompt: 4, max_new_tokens: 4}
batch: {prompts_per_step: 2, mini_batch_size: 8, micro_batch_size: 4}
learner: {algorithm: grpo}
reward:
  max_all_error_steps: 2
  components:
    - {scheme: match_choice, name: choice}
eval: {every: 0}
checkpoint: {every: 0}
)");
  return "c.yaml";
}

TEST(ScoreWatch, KeelTrainStopsWhenTheVerifierFailsOnEverySample) {
  ScratchDir dir("all_errors");
  const auto cfg = write_poisoned_run(dir);
  auto r = run_keel("train " + cfg, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("reward component 'choice': first verifier error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("must be a choice letter among"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed on every sample for 2 steps in a row (steps 1-2; reward.max_all_error_steps 2)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("internal error"), std::string::npos) << r.out;
  // The first error is logged once, not once a step.
  const auto first = r.out.find("first verifier error");
  EXPECT_EQ(r.out.find("first verifier error", first + 1), std::string::npos) << r.out;

  // reward.max_all_error_steps 0: trains on (the fallback reward), loudly, to the end.
  r = run_keel("train " + cfg + " reward.max_all_error_steps=0 run.total_steps=3 run.output_dir=on", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("step 1: reward component 'choice': the verifier failed on 100% of its calls"),
            std::string::npos)
      << r.out;
  const auto m = testing::json_file_lines(dir.path() / "on/v/metrics.jsonl");
  ASSERT_EQ(m.size(), 3u);
  for (const auto& j : m) EXPECT_DOUBLE_EQ(j.at("reward/choice/error_share").get<double>(), 1.0) << j.dump();
}

}  // namespace
}  // namespace keel::loop
