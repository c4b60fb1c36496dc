// Test helpers shared by the multi-process training tests: a tiny run's config head, the checks
// that two runs (e.g. N ranks and one process) trained the same, and that a run's TensorBoard file
// mirrors its metrics.jsonl.
#pragma once

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "tests/trainer/cli/run_keel.h"
#include "tests/trainer/metrics/tfevents_reader.h"

namespace keel::testing {

/// run / model / data / rollout sections of a 3-step run on the built-in arithmetic task with a
/// 1-layer model; tests append their batch, learner, optim, eval and checkpoint sections.
inline const std::string kTinyArithmeticRun = R"(
run: {name: tiny, total_steps: 3, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 32}
data:
  task: arithmetic
  task_params: {min_digits: 1, max_digits: 1}
  eval_size: 8
rollout: {samples_per_prompt: 4, max_new_tokens: 4}
)";

/// A tiny multi-turn run: the calculator environment's episodes from random init (junk turns, but
/// every piece of the multi-turn step runs: tool calls parsed, observations appended, turn rewards,
/// turn_grpo); the batch, optim, eval and checkpoint sections are the test's.
inline const std::string kTinyCalculatorRun = R"(
run: {name: tiny, total_steps: 3, device: cpu, seed: 3, threads: 1}
model:
  init: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, max_position_embeddings: 128}
data: {task: calculator, eval_size: 4}
env: {name: calculator, max_turns: 3, max_tokens: 40}
rollout: {samples_per_prompt: 4, max_new_tokens: 8}
learner: {algorithm: grpo}
advantage: {estimator: turn_grpo}
reward: {components: [{name: env, scheme: env, params: {dense: true}}, {name: fmt, scheme: format_regex, weight: 0.5, params: {pattern: "calc"}}]}
)";

/// A stateful reward section: the verifier's reward standardised by running mean / std (meanstd's
/// statistics are the reward state that checkpoints must carry).
inline const std::string kStatefulReward = R"(
reward:
  components:
    - {scheme: task_arithmetic, name: correct, weight: 0.0}
    - {scheme: meanstd, name: normed, weight: 1.0, params: {input: prior.correct}}
)";

/// Every metric of `a` (timings aside) equals `b`'s within 1e-5, steps from..end; at least
/// `min_compared` values are compared.
inline void expect_same_metrics(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b, size_t from,
                                int min_compared) {
  ASSERT_EQ(a.size(), b.size());
  int compared = 0;
  for (size_t i = from; i < a.size(); ++i)
    for (const auto& [k, v] : a[i].items()) {
      if (k == "wall_time" || k.rfind("time/", 0) == 0 || k.rfind("perf/", 0) == 0) continue;
      ASSERT_TRUE(b[i].contains(k)) << "step " << i + 1 << ": the other run lacks " << k;
      EXPECT_NEAR(v.get<double>(), b[i][k].get<double>(), 1e-5) << "step " << i + 1 << " " << k;
      ++compared;
    }
  EXPECT_GT(compared, min_compared);
}

/// The `model` directory (policy, critic, ...) of checkpoint `step` holds the same weights in both
/// run directories (allclose 1e-4 / 1e-5).
inline void expect_same_weights(const std::filesystem::path& one, const std::filesystem::path& two,
                                const std::string& model, const std::string& step = "step-00000003") {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  const auto ckpt = std::filesystem::path("checkpoints") / step / model;
  const auto pa = models::load_pretrained((one / ckpt).string(), reg).named_parameters();
  const auto pb = models::load_pretrained((two / ckpt).string(), reg).named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& [k, t] : pa) EXPECT_TRUE(torch::allclose(t, pb.at(k), 1e-4, 1e-5)) << model << " " << k;
}

/// `r` resumed a killed run into `resumed`, which now equals the uninterrupted run `straight`: the
/// resume was logged, metrics.jsonl holds `steps` lines whose metrics equal straight's, and the
/// policy of checkpoint `step` agrees.
inline void expect_resumed_equals(const RunResult& r, const std::filesystem::path& straight,
                                  const std::filesystem::path& resumed, size_t steps, int min_compared,
                                  const std::string& step) {
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  const auto a = json_file_lines(straight / "metrics.jsonl");
  const auto b = json_file_lines(resumed / "metrics.jsonl");
  ASSERT_EQ(b.size(), steps);
  expect_same_metrics(a, b, 0, min_compared);
  expect_same_weights(straight, resumed, "policy", step);
}

/// `run_dir`/tensorboard holds exactly one event file (one writer, on rank 0) and it mirrors
/// `run_dir`/metrics.jsonl: the file_version event, then for every line an Event of the same step
/// whose scalars carry exactly the line's keys (step and wall_time aside) with the line's values as
/// float (a null in the JSONL is a non-finite value). Returns the number of scalars compared.
inline size_t expect_tfevents_mirror_jsonl(const std::filesystem::path& run_dir) {
  const auto files = tfevents_files(run_dir / "tensorboard");
  EXPECT_EQ(files.size(), 1u) << (run_dir / "tensorboard");
  if (files.size() != 1) return 0;
  std::vector<TfEvent> events;
  EXPECT_NO_THROW(events = read_tfevents(files[0])) << files[0];
  const auto lines = json_file_lines(run_dir / "metrics.jsonl");
  EXPECT_EQ(events.size(), lines.size() + 1) << files[0];
  if (events.size() != lines.size() + 1) return 0;
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  size_t compared = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& e = events[i + 1];
    const auto step = lines[i].at("step").get<int64_t>();
    EXPECT_EQ(e.step, step);
    std::map<std::string, float> scalars;
    for (const auto& s : e.scalars) {
      EXPECT_TRUE(s.simple_value.has_value()) << "step " << step << " " << s.tag;
      EXPECT_TRUE(scalars.emplace(s.tag, s.simple_value.value_or(0)).second) << "step " << step << " repeats " << s.tag;
    }
    size_t keys = 0;
    for (const auto& [k, v] : lines[i].items()) {
      if (k == "step" || k == "wall_time") continue;
      ++keys;
      const auto it = scalars.find(k);
      if (it == scalars.end()) {
        ADD_FAILURE() << "step " << step << ": " << k << " is in metrics.jsonl but not in " << files[0];
        continue;
      }
      if (v.is_null()) EXPECT_FALSE(std::isfinite(it->second)) << "step " << step << " " << k;
      else EXPECT_EQ(it->second, static_cast<float>(v.get<double>())) << "step " << step << " " << k;
      ++compared;
    }
    EXPECT_EQ(scalars.size(), keys) << "step " << step << ": the event file has tags metrics.jsonl lacks";
  }
  return compared;
}

}  // namespace keel::testing
