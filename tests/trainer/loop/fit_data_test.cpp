// The data held against the model's context at load (issue 22 item 1): one prompt longer than
// the context killed the run at the step that drew it, and every resume replayed into it. Now
// `keel train` refuses such data at load naming the record and the numbers (data.too_long: error),
// or drops and counts it and trains to the end (skip). Also SFT records, and lines over
// data.max_record_bytes (item 9), through the real binary.
#include "trainer/loop/fit_data.h"

#include <gtest/gtest.h>

#include "tests/trainer/cli/run_keel.h"

namespace keel::loop {
namespace {

using testing::json_file_lines;
using testing::run_keel;
using testing::ScratchDir;

const char* kTinyFileGrpo = R"(run: {name: fit, total_steps: 6, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 64}
data: {train_file: p.jsonl, eval_fraction: 0}
rollout: {samples_per_prompt: 2, max_new_tokens: 4}
batch: {prompts_per_step: 2, mini_batch_size: 4, micro_batch_size: 2}
learner: {algorithm: grpo}
reward:
  components:
    - {scheme: match_exact, name: exact}
eval: {every: 0}
checkpoint: {every: 3}
)";

/// 8 short prompts and, on line 5, one far longer than the 64-token context.
void write_prompts(const ScratchDir& dir) {
  std::string lines;
  for (int i = 0; i < 8; ++i) {
    std::string prompt = std::to_string(i) + "+1=";
    if (i == 4)
      for (int w = 0; w < 120; ++w) prompt += " word" + std::to_string(w);
    lines += "{\"prompt\": \"" + prompt + "\", \"answer\": \"" + std::to_string(i + 1) + "\"}\n";
  }
  dir.write("p.jsonl", lines);
  dir.write("c.yaml", kTinyFileGrpo);
}

TEST(FitData, KeelTrainRefusesATooLongPromptAtLoadNamingTheRecord) {
  ScratchDir dir("too_long_error");
  write_prompts(dir);
  const auto r = run_keel("train c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("p.jsonl:5: prompt of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+ rollout.max_new_tokens 4 = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exceeds the model's context of 64 tokens (1 of the 8 records checked do not fit)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("data.too_long: skip"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("internal error"), std::string::npos) << r.out;
  // Refused before any step ran.
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "runs/fit/metrics.jsonl") &&
               !json_file_lines(dir.path() / "runs/fit/metrics.jsonl").empty());
}

TEST(FitData, KeelTrainSkipsATooLongPromptCountsItAndFinishes) {
  ScratchDir dir("too_long_skip");
  write_prompts(dir);
  // 6 steps x 2 prompts: every record is drawn at least once (the long one would have been too).
  auto r = run_keel("train c.yaml data.too_long=skip", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("data: dropped 1 record(s) that do not fit the model's context of 64 tokens"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("the first: "), std::string::npos) << r.out;
  auto m = json_file_lines(dir.path() / "runs/fit/metrics.jsonl");
  ASSERT_EQ(m.size(), 6u);
  EXPECT_DOUBLE_EQ(m[0].at("data/skipped_too_long").get<double>(), 1.0);  // reported once, in step 1
  for (size_t i = 1; i < m.size(); ++i) EXPECT_FALSE(m[i].contains("data/skipped_too_long")) << m[i].dump();
  // A resume goes on past it too (and does not report the load's count again).
  r = run_keel("train c.yaml data.too_long=skip run.total_steps=9 run.resume=auto", dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  m = json_file_lines(dir.path() / "runs/fit/metrics.jsonl");
  ASSERT_EQ(m.size(), 9u);
  for (size_t i = 6; i < m.size(); ++i) EXPECT_FALSE(m[i].contains("data/skipped_too_long")) << m[i].dump();
}

const char* kTinySft = R"(run: {name: s, total_steps: 2, device: cpu, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 64}
data: {train_file: sft.jsonl, eval_fraction: 0}
batch: {mini_batch_size: 4, micro_batch_size: 2}
)";

TEST(FitData, KeelSftChecksPromptPlusResponseAndTheRecordSize) {
  ScratchDir dir("too_long_sft");
  std::string lines, long_response;
  for (int w = 0; w < 120; ++w) long_response += " word" + std::to_string(w);
  for (int i = 0; i < 6; ++i)
    lines += "{\"prompt\": \"" + std::to_string(i) + "+1=\", \"response\": \"" +
             (i == 2 ? long_response : std::to_string(i + 1)) + "\"}\n";
  dir.write("sft.jsonl", lines);
  dir.write("c.yaml", kTinySft);
  auto r = run_keel("sft c.yaml", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("sft.jsonl:3: prompt of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+ the response (with EOS) "), std::string::npos) << r.out;
  r = run_keel("sft c.yaml data.too_long=skip", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // A line over data.max_record_bytes (a 50 MB response was std::bad_alloc): file:line, skippable.
  r = run_keel("sft c.yaml data.max_record_bytes=200 run.output_dir=bytes", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("sft.jsonl:3: the line is "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("over data.max_record_bytes 200"), std::string::npos) << r.out;
  r = run_keel("sft c.yaml data.max_record_bytes=200 data.skip_bad_lines=true run.output_dir=bytes", dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace keel::loop
